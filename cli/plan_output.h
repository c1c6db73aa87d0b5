/*
 * plan_output.h - a plan for people (table and reasons) and for programs
 * (the JSON object of DESIGN.md).
 */
#ifndef DUET_PLAN_OUTPUT_H
#define DUET_PLAN_OUTPUT_H

#include <stdio.h>

#include "cli/plan_images.h"
#include "scheduler/placement.h"

/* imgs: what duetd's store says of the workloads' OCI images (may be
 * NULL or empty). */
void plan_print_table(const struct plan *p, const struct plan_images *imgs, FILE *out);
/* Returns 0, or -1 when out could not be written. */
int plan_print_json(const struct plan *p, const struct plan_images *imgs, FILE *out);

#endif
