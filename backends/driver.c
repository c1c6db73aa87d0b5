#include "driver.h"

const char *backend_kind_name(enum backend_kind k)
{
    switch (k) {
    case BACKEND_VM: return "vm";
    case BACKEND_CONTAINER: return "container";
    default: return "?";
    }
}
