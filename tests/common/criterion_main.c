/*
 * criterion_main.c - main() of every test binary.
 *
 * criterion's runner keeps a few bytes of its own until exit, which
 * LeakSanitizer would report.  A suppression by module would also hide
 * every leak in the code under test (each test's stack passes through
 * criterion), so instead the runner turns leak checking off only after all
 * tests have run: the workers that ran the tests still check at their exit.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include <stdio.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
#if defined(__SANITIZE_ADDRESS__)
    fflush(NULL);
    _exit(result);   /* no atexit: LeakSanitizer's check is for the workers */
#endif
    return result;
}
