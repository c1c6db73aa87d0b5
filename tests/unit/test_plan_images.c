/*
 * test_plan_images.c - how `duet plan` prints an image's command: one
 * line, arguments quoted as a shell would need, and nothing of a hostile
 * image's strings (escape sequences, newlines) reaching the terminal.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cli/plan_images.h"

static const char *text(char **argv, size_t n, size_t len)
{
    static char buf[512];
    struct plan_image pi = {.command = argv, .n_command = n};
    plan_image_command_text(&pi, buf, len);
    return buf;
}

Test(plan_images, a_command_is_one_quoted_line)
{
    char *plain[] = {"/bin/sleep", "60"};
    cr_expect_str_eq(text(plain, 2, 512), "/bin/sleep 60");
    char *sh[] = {"/bin/sh", "-c", "echo it's $HOME", ""};
    cr_expect_str_eq(text(sh, 4, 512), "/bin/sh -c 'echo it'\\''s $HOME' ''");
    /* an image's Entrypoint that tries to rewrite the terminal */
    char *hostile[] = {"/bin/x\x1b]0;owned\x07", "a\nb\tc\x7f"};
    const char *t = text(hostile, 2, 512);
    cr_expect(!strpbrk(t, "\x1b\x07\n\t\x7f"), "a control character got through: %s", t);
    cr_expect_str_eq(t, "'/bin/x?]0;owned?' 'a b c?'");
    /* cut short, never past the buffer */
    char long_arg[600];
    memset(long_arg, 'x', sizeof(long_arg) - 1);
    long_arg[sizeof(long_arg) - 1] = '\0';
    char *lng[] = {long_arg};
    t = text(lng, 1, 64);
    cr_expect_leq(strlen(t), 63);
    cr_expect_str_eq(t + strlen(t) - 3, "...");
    cr_expect_eq(strspn(t, "x"), strlen(t) - 3, "%s", t);
}
