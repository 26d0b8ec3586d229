#include <stdio.h>

int main(void) {
    puts("Hello from a reproducible build!");
    return 0;
}
