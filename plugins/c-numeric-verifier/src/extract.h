/*
 * extract.h: find the final numeric answer of a free-text solution (GSM8K style).
 *
 * Pure C over (pointer, length) text, no allocation and no SDK dependency, so it can be
 * unit-tested natively and reused; `verifier.c` wires it to the Arbiter SDK.
 */
#ifndef NUMERIC_EXTRACT_H
#define NUMERIC_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>

/* Which rule found the answer, in order of precedence. */
typedef enum {
    NUMERIC_RULE_MARKER,      /* the last `#### N` */
    NUMERIC_RULE_PHRASE,      /* else the last "answer is N" / "answer: N" */
    NUMERIC_RULE_LAST_NUMBER, /* else the last number anywhere in the text */
} numeric_rule_t;

typedef struct {
    double value;
    numeric_rule_t rule;
    /* The number as written (sign, `$`, separators included): text[start, end). */
    size_t start, end;
} numeric_answer_t;

/* Finds the final answer of `text`; false when the text holds no number at all. */
bool numeric_final_answer(const char *text, size_t len, numeric_answer_t *out);

/* Parses a whole string as one number (a reference answer): surrounding whitespace, a `$`
 * and thousands separators are allowed, nothing else. False when it is not a number. */
bool numeric_parse(const char *text, size_t len, double *out);

const char *numeric_rule_name(numeric_rule_t rule);

#endif
