/*
 * web_assets.c - orchestrator/web/'s files, in duetd's read-only data.
 *
 * The assembler copies each file in (.incbin, relative to the top of the
 * tree, where make runs the compiler); the Makefile makes this object
 * depend on them.  Each ends in a NUL that is not counted.
 */
#include <string.h>

#include "web_assets.h"

#define WEB_FILE(sym, file)                                                                            \
    __asm__(".section .rodata\n.balign 16\n.global " #sym "\n" #sym ":\n.incbin \"" file "\"\n.global " \
            #sym "_end\n" #sym "_end:\n.byte 0\n.previous\n");                                          \
    extern const unsigned char sym[], sym##_end[];

WEB_FILE(web_index_html, "orchestrator/web/index.html")
WEB_FILE(web_app_js, "orchestrator/web/app.js")
WEB_FILE(web_app_css, "orchestrator/web/app.css")
WEB_FILE(web_icon_svg, "orchestrator/web/icon.svg")

bool web_asset_find(const char *path, struct web_asset *out)
{
    static const struct {
        const char *path, *type;
        const unsigned char *start, *end;
    } assets[] = {
        {"/", "text/html; charset=utf-8", web_index_html, web_index_html_end},
        {"/app.js", "text/javascript; charset=utf-8", web_app_js, web_app_js_end},
        {"/app.css", "text/css; charset=utf-8", web_app_css, web_app_css_end},
        {"/icon.svg", "image/svg+xml", web_icon_svg, web_icon_svg_end},
    };
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
        if (strcmp(path, assets[i].path) == 0) {
            *out = (struct web_asset){assets[i].path, assets[i].type, assets[i].start,
                                      (size_t)(assets[i].end - assets[i].start)};
            return true;
        }
    return false;
}
