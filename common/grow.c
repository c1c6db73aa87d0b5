#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

void *duet_grow(void *ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return ptr;
    size_t n = *cap ? *cap : 8;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elem)
        abort();
    void *p = realloc(ptr, n * elem);
    if (!p)
        abort();
    *cap = n;
    return p;
}
