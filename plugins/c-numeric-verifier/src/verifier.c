/*
 * c-numeric-verifier: compares the final number of a candidate with the task's reference.
 *
 * The final number is found by extract.c (`#### N`, else "answer is N", else the last
 * number). The reference is the task metadata `reference` (a number; `$`, spaces and
 * thousands separators are allowed). The two agree within `tolerance`:
 *   tolerance-mode = absolute (default): |answer - reference| <= tolerance
 *   tolerance-mode = relative:           |answer - reference| <= tolerance * |reference|
 * Accept (score 1) when they agree, reject (score 0) when they differ or the candidate
 * states no number, abstain when the task has no reference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "arbiter.h"
#include "extract.h"

typedef struct {
    double tolerance;
    bool relative;
} numeric_verifier_t;

arbiter_plugin_info_t arbiter_verifier_info(void) {
    arbiter_plugin_info_t info = arbiter_plugin_info_verifier(
        "c-numeric-verifier", "0.1.0",
        "Compares the final number of an answer (#### N, \"answer is N\", else the last number) "
        "with the task's `reference` metadata");
    arbiter_plugin_info_stateless(&info);
    arbiter_plugin_info_config_key(&info, "tolerance", "Largest accepted difference from the reference (>= 0)", "0.000001");
    arbiter_plugin_info_config_key(&info, "tolerance-mode",
                                   "`absolute` (|a - r| <= tolerance) or `relative` (|a - r| <= tolerance * |r|, tolerance < 1)",
                                   "absolute");
    return info;
}

bool arbiter_verifier_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err) {
    static const char *const known[] = {"tolerance", "tolerance-mode", NULL};
    if (!arbiter_config_deny_unknown(config, known, err)) {
        return false;
    }
    double tolerance;
    if (!arbiter_config_parse_or_f64(config, "tolerance", 1e-6, &tolerance, err)) {
        return false;
    }
    bool relative = false;
    const arbiter_string_t *mode = arbiter_config_get(config, "tolerance-mode");
    if (mode != NULL) {
        arbiter_string_t m = arbiter_string_trim(*mode);
        if (arbiter_string_eq(m, "relative")) {
            relative = true;
        } else if (!arbiter_string_eq(m, "absolute")) {
            return arbiter_plugin_error_invalid_config(err, "tolerance-mode = \"%.*s\": expected `absolute` or `relative`", (int)mode->len, (const char *)mode->ptr);
        }
    }
    if (!isfinite(tolerance) || tolerance < 0 || (relative && tolerance >= 1)) {
        return arbiter_plugin_error_invalid_config(err, "tolerance %g is outside %s", tolerance, relative ? "[0, 1) for relative mode" : "[0, infinity)");
    }
    numeric_verifier_t *v = malloc(sizeof *v);
    if (v == NULL) {
        return arbiter_plugin_error_failed(err, "out of memory");
    }
    v->tolerance = tolerance;
    v->relative = relative;
    *self = v;
    return true;
}

/* Integers print as integers, other values with the digits needed to read them back;
 * non-finite values (a thousand-digit "number") as JSON null. */
static void append_number(arbiter_string_t *s, double x) {
    if (!isfinite(x)) {
        arbiter_string_appendf(s, "null");
    } else if (x == floor(x) && fabs(x) < 1e15) {
        arbiter_string_appendf(s, "%.0f", x);
    } else {
        /* The shortest of 15 or 17 significant digits that reads back as `x`. */
        char buf[32];
        snprintf(buf, sizeof buf, "%.15g", x);
        if (strtod(buf, NULL) != x) {
            snprintf(buf, sizeof buf, "%.17g", x);
        }
        arbiter_string_appendf(s, "%s", buf);
    }
}

bool arbiter_verifier_verify(const void *self, const arbiter_task_t *task, const arbiter_candidate_t *candidate, arbiter_verdict_t *verdict, arbiter_plugin_error_t *err) {
    const numeric_verifier_t *v = self;
    const arbiter_string_t *raw = arbiter_task_meta(task, "reference");
    if (raw == NULL) {
        *verdict = arbiter_verdict_abstain("the task has no `reference` metadata to compare with");
        return true;
    }
    double reference;
    if (!numeric_parse((const char *)raw->ptr, raw->len, &reference)) {
        int shown = raw->len > 80 ? 80 : (int)raw->len;
        return arbiter_plugin_error_invalid_input(err, "task metadata `reference` = \"%.*s%s\" is not a number", shown, (const char *)raw->ptr, raw->len > 80 ? "..." : "");
    }

    numeric_answer_t answer;
    if (!numeric_final_answer((const char *)candidate->text.ptr, candidate->text.len, &answer)) {
        *verdict = arbiter_verdict_reject(0.0, "the answer states no number");
        arbiter_verdict_with_check(verdict, "final-answer", false, "no number found");
        arbiter_verdict_with_details(verdict, "{\"final_answer\":null,\"rule\":null}");
        return true;
    }

    double diff = fabs(answer.value - reference);
    double allowed = v->relative ? v->tolerance * fabs(reference) : v->tolerance;
    /* NaN never compares true: an infinite answer is a mismatch. */
    bool same = diff <= allowed;
    const char *written = (const char *)candidate->text.ptr + answer.start;
    int written_len = answer.end - answer.start > 40 ? 40 : (int)(answer.end - answer.start);
    int ref_len = raw->len > 40 ? 40 : (int)raw->len;
    const char *rule = numeric_rule_name(answer.rule);
    if (same) {
        *verdict = arbiter_verdict_accept(1.0, "final answer %.*s matches the reference %.*s", written_len, written, ref_len, (const char *)raw->ptr);
        arbiter_verdict_with_check(verdict, "final-answer", true, NULL);
    } else {
        *verdict = arbiter_verdict_reject(0.0, "final answer %.*s (%s) differs from the reference %.*s", written_len, written, rule, ref_len, (const char *)raw->ptr);
        arbiter_verdict_with_check(verdict, "final-answer", false, "differs by %g (allowed %g)", diff, allowed);
    }
    arbiter_string_t details = arbiter_string_format("{\"final_answer\":");
    append_number(&details, answer.value);
    arbiter_string_appendf(&details, ",\"reference\":");
    append_number(&details, reference);
    arbiter_string_appendf(&details, ",\"rule\":\"%s\"}", rule);
    arbiter_verdict_with_details(verdict, "%.*s", (int)details.len, (const char *)details.ptr);
    arbiter_string_free(&details);
    return true;
}
