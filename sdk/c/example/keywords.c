/* keywords: accepts an answer that mentions every word of the `required` setting. */
#include <stdlib.h>
#include <string.h>

#include "arbiter.h"

#define MAX_WORDS 16

typedef struct {
    size_t count;
    char *words[MAX_WORDS]; /* NUL-terminated copies: the config is only borrowed */
} keywords_t;

arbiter_plugin_info_t arbiter_verifier_info(void) {
    arbiter_plugin_info_t info = arbiter_plugin_info_verifier("keywords", "0.1.0", "Accepts answers that mention every required word");
    arbiter_plugin_info_stateless(&info);
    arbiter_plugin_info_config_key(&info, "required", "Comma-separated words the answer must contain", NULL);
    return info;
}

bool arbiter_verifier_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err) {
    static const char *const known[] = {"required", NULL};
    if (!arbiter_config_deny_unknown(config, known, err)) {
        return false;
    }
    arbiter_string_t words[MAX_WORDS];
    size_t count = arbiter_config_list(config, "required", words, MAX_WORDS);
    if (count == 0 || count > MAX_WORDS) {
        return arbiter_plugin_error_invalid_config(err, "setting `required` needs 1 to %d words, got %zu", MAX_WORDS, count);
    }
    keywords_t *k = calloc(1, sizeof *k);
    if (k == NULL) {
        return arbiter_plugin_error_failed(err, "out of memory");
    }
    for (k->count = 0; k->count < count; k->count++) {
        k->words[k->count] = arbiter_string_cstr(words[k->count]);
    }
    *self = k;
    return true;
}

/* The default `_drop` would free only the struct. */
void arbiter_verifier_drop(void *self) {
    keywords_t *k = self;
    for (size_t i = 0; i < k->count; i++) {
        free(k->words[i]);
    }
    free(k);
}

bool arbiter_verifier_verify(const void *self, const arbiter_task_t *task, const arbiter_candidate_t *candidate, arbiter_verdict_t *verdict, arbiter_plugin_error_t *err) {
    const keywords_t *k = self;
    (void)task;
    (void)err;
    char *text = arbiter_string_cstr(candidate->text);
    size_t found = 0;
    for (size_t i = 0; i < k->count; i++) {
        found += strstr(text, k->words[i]) != NULL;
    }
    if (found == k->count) {
        *verdict = arbiter_verdict_accept(1.0, "mentions all %zu required words", k->count);
    } else {
        *verdict = arbiter_verdict_reject((double)found / k->count, "mentions %zu of %zu required words", found, k->count);
    }
    for (size_t i = 0; i < k->count; i++) {
        bool passed = strstr(text, k->words[i]) != NULL;
        arbiter_verdict_with_check(verdict, k->words[i], passed, passed ? NULL : "`%s` is missing", k->words[i]);
    }
    arbiter_log_debug("checked %zu words in %zu bytes", k->count, candidate->text.len);
    free(text);
    return true;
}
