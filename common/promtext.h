/*
 * promtext.h - the Prometheus text exposition format (version 0.0.4).
 *
 * A family is its HELP and TYPE lines followed by all of its samples, so
 * a writer walks its subjects once per family.  Label values are escaped
 * (backslash, double quote, newline) and bytes that are not UTF-8 become
 * U+FFFD, so whatever a name holds the output parses.  Histograms keep
 * cumulative buckets the way the format wants them, with +Inf, _sum and
 * _count.
 */
#ifndef DUET_PROMTEXT_H
#define DUET_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROM_LABELS_MAX 1024
#define PROM_HIST_MAX 16

/* A label set being built: {k1="v1",k2="v2"}; too long a set is cut at a
 * whole label (truncated says so) rather than written broken. */
struct prom_labels {
    char buf[PROM_LABELS_MAX];
    size_t len;
    bool truncated;
};

void prom_labels_init(struct prom_labels *l);
void prom_label(struct prom_labels *l, const char *key, const char *value);
void prom_label_u64(struct prom_labels *l, const char *key, uint64_t value);

/* type: "gauge", "counter", "histogram". */
void prom_family(FILE *f, const char *name, const char *type, const char *help);
/* labels may be NULL. */
void prom_u64(FILE *f, const char *name, const struct prom_labels *labels, uint64_t v);
void prom_f64(FILE *f, const char *name, const struct prom_labels *labels, double v);

/* bounds: ascending upper bounds (at most PROM_HIST_MAX), static. */
struct prom_hist {
    const double *bounds;
    size_t n;
    uint64_t counts[PROM_HIST_MAX];   /* not cumulative: observations in (bound[i-1], bound[i]] */
    uint64_t count;
    double sum;
};
void prom_hist_init(struct prom_hist *h, const double *bounds, size_t n);
void prom_hist_observe(struct prom_hist *h, double v);
/* name_bucket, name_sum, name_count. */
void prom_hist_write(FILE *f, const char *name, const struct prom_labels *labels, const struct prom_hist *h);

#endif
