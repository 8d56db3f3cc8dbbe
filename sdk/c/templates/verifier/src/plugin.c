/*
 * {{name}}: an Arbiter verifier.
 *
 * It starts with the example check every `arbiter plugin new` template implements, so its
 * verdicts can be compared across languages: reject an answer with fewer than
 * `min-length` characters once trimmed (default 1) with score 0, accept anything longer
 * with score 1. Replace `arbiter_verifier_verify` and `cases.jsonl` with your own.
 */
#include <stdlib.h>

#include "arbiter.h"

typedef struct {
    int64_t min_length;
} non_empty_t;

arbiter_plugin_info_t arbiter_verifier_info(void) {
    arbiter_plugin_info_t info = arbiter_plugin_info_verifier("{{name}}", "0.1.0", "Rejects answers shorter than `min-length` characters");
    arbiter_plugin_info_stateless(&info);
    arbiter_plugin_info_config_key(&info, "min-length", "Shortest acceptable answer, in characters once trimmed", "1");
    return info;
}

/* Parses the settings once; the SDK keeps the result while they stay the same. */
bool arbiter_verifier_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err) {
    int64_t min_length;
    if (!arbiter_config_parse_or_i64(config, "min-length", 1, &min_length, err)) {
        return false;
    }
    if (min_length < 0) {
        return arbiter_plugin_error_invalid_config(err, "setting `min-length` must not be negative (got %lld)", (long long)min_length);
    }
    non_empty_t *v = malloc(sizeof *v);
    if (v == NULL) {
        return arbiter_plugin_error_failed(err, "out of memory");
    }
    v->min_length = min_length;
    *self = v;
    return true;
}

bool arbiter_verifier_verify(const void *self, const arbiter_task_t *task, const arbiter_candidate_t *candidate, arbiter_verdict_t *verdict, arbiter_plugin_error_t *err) {
    const non_empty_t *v = self;
    (void)task;
    (void)err;
    size_t length = arbiter_string_chars(arbiter_string_trim(candidate->text));
    if ((int64_t)length >= v->min_length) {
        *verdict = arbiter_verdict_accept(1.0, "%zu characters (at least %lld)", length, (long long)v->min_length);
    } else {
        *verdict = arbiter_verdict_reject(0.0, "%zu characters, fewer than %lld", length, (long long)v->min_length);
    }
    return true;
}

/* `select` (rescoring all candidates together) is optional: the SDK's default keeps each
 * candidate's own verdict score. Define arbiter_verifier_select to change that. */
