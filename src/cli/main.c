#include "cli.h"
#include <stdio.h>
int main(void) { printf("convrec %s\n", cr_version()); return 0; }
