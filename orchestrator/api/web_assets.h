/*
 * web_assets.h - the dashboard's pages, scripts and styles, built into
 * duetd (orchestrator/web/): nothing of the page is fetched from elsewhere.
 */
#ifndef DUET_WEB_ASSETS_H
#define DUET_WEB_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

struct web_asset {
    const char *path;              /* "/", "/app.js", ... */
    const char *type;              /* its Content-Type */
    const unsigned char *data;
    size_t len;
};

/* The asset served at path, into out; false when there is none. */
bool web_asset_find(const char *path, struct web_asset *out);

#endif
