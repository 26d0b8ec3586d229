#include <stdio.h>

int main(void) {
    printf("built at %s %s\n", __DATE__, __TIME__);
    return 0;
}
