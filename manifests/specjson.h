/*
 * specjson.h - a workload spec as canonical JSON.
 *
 * The daemon keeps each applied spec as text: JSON is YAML, so the text
 * loads back through the same manifest parser (manifest_set_load_buffer)
 * and yields the same spec.  Canonical means one spelling per spec (fixed
 * key order, defaults left out, paths already absolute), so two specs are
 * the same exactly when their texts are: that is how apply tells
 * "unchanged" from "replaced".
 */
#ifndef DUET_SPECJSON_H
#define DUET_SPECJSON_H

#include <jansson.h>

#include "manifest.h"

/* A new reference to the whole document {apiVersion, kind, metadata, spec}. */
json_t *specjson_from_workload(const struct workload_spec *w);

/* The same, as compact text; the caller frees it. */
char *specjson_text(const struct workload_spec *w);

/* Loads n canonical texts into set as the documents of one file `name`. */
void specjson_load(struct manifest_set *set, const char *name, char *const *texts, size_t n);

#endif
