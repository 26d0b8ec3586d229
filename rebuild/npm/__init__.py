"""npm: lockfiles read as hostile input, and the offline cache a build installs from."""
