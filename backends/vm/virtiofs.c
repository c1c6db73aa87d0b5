#include "virtiofs.h"

#include <stdio.h>
#include <unistd.h>

bool vm_virtiofsd_find(char *out, size_t len)
{
    static const char *const paths[] = VM_VIRTIOFSD_PATHS;
    for (size_t i = 0; paths[i]; i++)
        if (access(paths[i], X_OK) == 0) {
            snprintf(out, len, "%s", paths[i]);
            return true;
        }
    return false;
}
