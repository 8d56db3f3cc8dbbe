/*
 * arbiter.c: the C SDK's helpers and the WIT exports built on the plugin's hooks.
 * See arbiter.h for the API and its conventions.
 */
#include "arbiter.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ memory */

/* Allocation failure means the call hit its memory cap: stop it (a trap the host reports
 * as such) rather than let NULL travel into the bindings. */
static void *xrealloc(void *ptr, size_t size) {
    void *out = realloc(ptr, size == 0 ? 1 : size);
    if (out == NULL) {
        abort();
    }
    return out;
}

static void *xcalloc(size_t count, size_t size) {
    void *out = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
    if (out == NULL) {
        abort();
    }
    return out;
}

/* Grows a (ptr, len) list by one zeroed element and returns it. Lists are built one
 * element at a time and stay short, so exact-size growth is fine. */
#define LIST_PUSH(list)                                                                    \
    ((list).ptr = xrealloc((list).ptr, ((list).len + 1) * sizeof(*(list).ptr)),           \
     memset(&(list).ptr[(list).len], 0, sizeof(*(list).ptr)), &(list).ptr[(list).len++])

/* ------------------------------------------------------------------ strings */

arbiter_string_t arbiter_str(const char *s) {
    arbiter_string_t out = {(uint8_t *)s, s ? strlen(s) : 0};
    return out;
}

arbiter_string_t arbiter_string_copy(const void *ptr, size_t len) {
    arbiter_string_t out = {NULL, 0};
    if (len > 0) {
        out.ptr = xrealloc(NULL, len);
        memcpy(out.ptr, ptr, len);
        out.len = len;
    }
    return out;
}

arbiter_string_t arbiter_string_new(const char *s) {
    return arbiter_string_copy(s, s ? strlen(s) : 0);
}

static void string_vappendf(arbiter_string_t *s, const char *fmt, va_list args) {
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(NULL, 0, fmt, again);
    va_end(again);
    if (n <= 0) {
        return;
    }
    /* +1 for vsnprintf's terminating NUL, which is not part of the string. */
    s->ptr = xrealloc(s->ptr, s->len + (size_t)n + 1);
    vsnprintf((char *)s->ptr + s->len, (size_t)n + 1, fmt, args);
    s->len += (size_t)n;
}

static arbiter_string_t string_vformat(const char *fmt, va_list args) {
    arbiter_string_t out = {NULL, 0};
    if (fmt != NULL) {
        string_vappendf(&out, fmt, args);
    }
    return out;
}

arbiter_string_t arbiter_string_format(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    arbiter_string_t out = string_vformat(fmt, args);
    va_end(args);
    return out;
}

void arbiter_string_append(arbiter_string_t *s, const void *ptr, size_t len) {
    if (len == 0) {
        return;
    }
    s->ptr = xrealloc(s->ptr, s->len + len);
    memcpy(s->ptr + s->len, ptr, len);
    s->len += len;
}

void arbiter_string_appendf(arbiter_string_t *s, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    string_vappendf(s, fmt, args);
    va_end(args);
}

void arbiter_string_free(arbiter_string_t *s) {
    free(s->ptr);
    s->ptr = NULL;
    s->len = 0;
}

bool arbiter_string_eq(arbiter_string_t s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

bool arbiter_string_equal(arbiter_string_t a, arbiter_string_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

char *arbiter_string_cstr(arbiter_string_t s) {
    char *out = xrealloc(NULL, s.len + 1);
    if (s.len > 0) {
        memcpy(out, s.ptr, s.len);
    }
    out[s.len] = '\0';
    return out;
}

/* Decodes one UTF-8 scalar at `p` (at most `n` bytes); invalid bytes decode as
 * themselves, one byte long, so malformed input never stalls a loop. */
static uint32_t utf8_decode(const uint8_t *p, size_t n, size_t *width) {
    uint8_t b = p[0];
    size_t w = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (w == 0 || w > n) {
        *width = 1;
        return b;
    }
    uint32_t c = w == 1 ? b : w == 2 ? (b & 0x1Fu) : w == 3 ? (b & 0x0Fu) : (b & 0x07u);
    for (size_t i = 1; i < w; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *width = 1;
            return b;
        }
        c = (c << 6) | (p[i] & 0x3Fu);
    }
    *width = w;
    return c;
}

/* Unicode White_Space, the set Rust's char::is_whitespace (and so str::trim) uses. */
static bool is_unicode_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

arbiter_string_t arbiter_string_trim(arbiter_string_t s) {
    size_t start = 0, end = s.len;
    while (start < end) {
        size_t w;
        uint32_t c = utf8_decode(s.ptr + start, end - start, &w);
        if (!is_unicode_space(c)) {
            break;
        }
        start += w;
    }
    while (end > start) {
        /* Step back to the first byte of the last scalar. */
        size_t back = end - 1;
        while (back > start && end - back < 4 && (s.ptr[back] & 0xC0) == 0x80) {
            back--;
        }
        size_t w;
        uint32_t c = utf8_decode(s.ptr + back, end - back, &w);
        if (back + w != end || !is_unicode_space(c)) {
            break;
        }
        end = back;
    }
    arbiter_string_t out = {s.ptr + start, end - start};
    return out;
}

size_t arbiter_string_chars(arbiter_string_t s) {
    size_t count = 0;
    for (size_t i = 0; i < s.len; i++) {
        /* Every byte but a continuation byte starts a character. */
        count += (s.ptr[i] & 0xC0) != 0x80;
    }
    return count;
}

/* ------------------------------------------------------------------ errors */

static bool set_error(arbiter_plugin_error_t *err, uint8_t tag, const char *fmt, va_list args) {
    err->tag = tag;
    arbiter_string_t message = string_vformat(fmt, args);
    switch (tag) {
    case ARBITER_PLUGIN_ERROR_INVALID_CONFIG:
        err->val.invalid_config = message;
        break;
    case ARBITER_PLUGIN_ERROR_INVALID_INPUT:
        err->val.invalid_input = message;
        break;
    default:
        err->val.failed = message;
        break;
    }
    return false;
}

bool arbiter_plugin_error_invalid_config(arbiter_plugin_error_t *err, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    set_error(err, ARBITER_PLUGIN_ERROR_INVALID_CONFIG, fmt, args);
    va_end(args);
    return false;
}

bool arbiter_plugin_error_invalid_input(arbiter_plugin_error_t *err, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    set_error(err, ARBITER_PLUGIN_ERROR_INVALID_INPUT, fmt, args);
    va_end(args);
    return false;
}

bool arbiter_plugin_error_failed(arbiter_plugin_error_t *err, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    set_error(err, ARBITER_PLUGIN_ERROR_FAILED, fmt, args);
    va_end(args);
    return false;
}

/* ------------------------------------------------------------------ config */

const arbiter_string_t *arbiter_config_get(const arbiter_config_t *config, const char *key) {
    for (size_t i = config->len; i > 0; i--) {
        if (arbiter_string_eq(config->ptr[i - 1].f0, key)) {
            return &config->ptr[i - 1].f1;
        }
    }
    return NULL;
}

bool arbiter_config_require(const arbiter_config_t *config, const char *key, const arbiter_string_t **value, arbiter_plugin_error_t *err) {
    *value = arbiter_config_get(config, key);
    if (*value == NULL) {
        return arbiter_plugin_error_invalid_config(err, "missing required setting `%s`", key);
    }
    return true;
}

/* The trimmed value of `key` as a NUL-terminated copy (free it), or NULL when absent. */
static char *config_trimmed(const arbiter_config_t *config, const char *key, const arbiter_string_t **raw) {
    *raw = arbiter_config_get(config, key);
    return *raw ? arbiter_string_cstr(arbiter_string_trim(**raw)) : NULL;
}

static bool parse_error(arbiter_plugin_error_t *err, const char *key, const arbiter_string_t *raw, const char *why) {
    return arbiter_plugin_error_invalid_config(err, "setting `%s` = \"%.*s\": %s", key, (int)raw->len, (const char *)raw->ptr, why);
}

bool arbiter_config_parse_or_f64(const arbiter_config_t *config, const char *key, double default_value, double *value, arbiter_plugin_error_t *err) {
    const arbiter_string_t *raw;
    char *text = config_trimmed(config, key, &raw);
    if (text == NULL) {
        *value = default_value;
        return true;
    }
    char *end = NULL;
    errno = 0;
    double parsed = strtod(text, &end);
    bool ok = *text != '\0' && end != NULL && *end == '\0' && errno != ERANGE;
    free(text);
    if (!ok) {
        return parse_error(err, key, raw, "not a number");
    }
    *value = parsed;
    return true;
}

bool arbiter_config_parse_or_i64(const arbiter_config_t *config, const char *key, int64_t default_value, int64_t *value, arbiter_plugin_error_t *err) {
    const arbiter_string_t *raw;
    char *text = config_trimmed(config, key, &raw);
    if (text == NULL) {
        *value = default_value;
        return true;
    }
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    bool ok = *text != '\0' && end != NULL && *end == '\0' && errno != ERANGE;
    free(text);
    if (!ok) {
        return parse_error(err, key, raw, "not an integer");
    }
    *value = (int64_t)parsed;
    return true;
}

bool arbiter_config_parse_or_bool(const arbiter_config_t *config, const char *key, bool default_value, bool *value, arbiter_plugin_error_t *err) {
    const arbiter_string_t *raw = arbiter_config_get(config, key);
    if (raw == NULL) {
        *value = default_value;
        return true;
    }
    arbiter_string_t trimmed = arbiter_string_trim(*raw);
    if (arbiter_string_eq(trimmed, "true")) {
        *value = true;
    } else if (arbiter_string_eq(trimmed, "false")) {
        *value = false;
    } else {
        return parse_error(err, key, raw, "expected `true` or `false`");
    }
    return true;
}

size_t arbiter_config_list(const arbiter_config_t *config, const char *key, arbiter_string_t *items, size_t max_items) {
    const arbiter_string_t *raw = arbiter_config_get(config, key);
    if (raw == NULL) {
        return 0;
    }
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= raw->len; i++) {
        if (i < raw->len && raw->ptr[i] != ',') {
            continue;
        }
        arbiter_string_t piece = {raw->ptr + start, i - start};
        piece = arbiter_string_trim(piece);
        if (piece.len > 0) {
            if (count < max_items) {
                items[count] = piece;
            }
            count++;
        }
        start = i + 1;
    }
    return count;
}

bool arbiter_config_deny_unknown(const arbiter_config_t *config, const char *const known[], arbiter_plugin_error_t *err) {
    for (size_t i = 0; i < config->len; i++) {
        bool found = false;
        for (size_t k = 0; known[k] != NULL && !found; k++) {
            found = arbiter_string_eq(config->ptr[i].f0, known[k]);
        }
        if (!found) {
            arbiter_string_t list = {NULL, 0};
            for (size_t k = 0; known[k] != NULL; k++) {
                arbiter_string_appendf(&list, "%s%s", k ? ", " : "", known[k]);
            }
            arbiter_plugin_error_invalid_config(err, "unknown setting `%.*s` (known: %.*s)", (int)config->ptr[i].f0.len, (const char *)config->ptr[i].f0.ptr, (int)list.len, (const char *)list.ptr);
            arbiter_string_free(&list);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ task, candidate, judged */

arbiter_string_t arbiter_task_prompt(const arbiter_task_t *task) {
    for (size_t i = task->messages.len; i > 0; i--) {
        if (arbiter_string_eq(task->messages.ptr[i - 1].role, "user")) {
            return task->messages.ptr[i - 1].content;
        }
    }
    if (task->messages.len > 0) {
        return task->messages.ptr[task->messages.len - 1].content;
    }
    arbiter_string_t empty = {NULL, 0};
    return empty;
}

const arbiter_string_t *arbiter_task_meta(const arbiter_task_t *task, const char *key) {
    for (size_t i = 0; i < task->metadata.len; i++) {
        if (arbiter_string_eq(task->metadata.ptr[i].f0, key)) {
            return &task->metadata.ptr[i].f1;
        }
    }
    return NULL;
}

bool arbiter_task_has_tag(const arbiter_task_t *task, const char *tag) {
    for (size_t i = 0; i < task->tags.len; i++) {
        if (arbiter_string_eq(task->tags.ptr[i], tag)) {
            return true;
        }
    }
    return false;
}

const arbiter_tool_t *arbiter_task_tool(const arbiter_task_t *task, arbiter_string_t name) {
    for (size_t i = 0; i < task->tools.len; i++) {
        if (arbiter_string_equal(task->tools.ptr[i].name, name)) {
            return &task->tools.ptr[i];
        }
    }
    return NULL;
}

bool arbiter_candidate_total_logprob(const arbiter_candidate_t *candidate, double *total) {
    if (candidate->logprobs.len == 0) {
        return false;
    }
    double sum = 0.0;
    for (size_t i = 0; i < candidate->logprobs.len; i++) {
        sum += candidate->logprobs.ptr[i].logprob;
    }
    *total = sum;
    return true;
}

arbiter_message_t arbiter_message_new(arbiter_string_t role, arbiter_string_t content) {
    arbiter_message_t m;
    memset(&m, 0, sizeof m);
    m.role = role;
    m.content = content;
    return m;
}

arbiter_message_t arbiter_message_user(arbiter_string_t content) {
    return arbiter_message_new(ARBITER_STR("user"), content);
}

double arbiter_judged_score(const arbiter_judged_t *judged) {
    return judged->verdict.is_some ? judged->verdict.val.score : 0.0;
}

/* ------------------------------------------------------------------ plugin info */

static arbiter_plugin_info_t info_of(arbiter_plugin_kind_t kind, const char *name, const char *version, const char *description) {
    arbiter_plugin_info_t info;
    memset(&info, 0, sizeof info);
    info.name = arbiter_string_new(name);
    info.version = arbiter_string_new(version);
    info.kind = kind;
    info.description = arbiter_string_new(description);
    return info;
}

arbiter_plugin_info_t arbiter_plugin_info_verifier(const char *name, const char *version, const char *description) {
    return info_of(ARBITER_PLUGIN_TYPES_PLUGIN_KIND_VERIFIER, name, version, description);
}

arbiter_plugin_info_t arbiter_plugin_info_router(const char *name, const char *version, const char *description) {
    return info_of(ARBITER_PLUGIN_TYPES_PLUGIN_KIND_ROUTER, name, version, description);
}

arbiter_plugin_info_t arbiter_plugin_info_decomposer(const char *name, const char *version, const char *description) {
    return info_of(ARBITER_PLUGIN_TYPES_PLUGIN_KIND_DECOMPOSER, name, version, description);
}

void arbiter_plugin_info_stateless(arbiter_plugin_info_t *info) {
    info->stateless = true;
}

void arbiter_plugin_info_config_key(arbiter_plugin_info_t *info, const char *name, const char *description, const char *default_value) {
    arbiter_config_key_t *key = LIST_PUSH(info->config_keys);
    key->name = arbiter_string_new(name);
    key->description = arbiter_string_new(description);
    if (default_value != NULL) {
        key->default_.is_some = true;
        key->default_.val = arbiter_string_new(default_value);
    }
}

/* ------------------------------------------------------------------ verdicts */

static arbiter_verdict_t verdict_v(arbiter_decision_t decision, double score, const char *reason, va_list args) {
    arbiter_verdict_t v;
    memset(&v, 0, sizeof v);
    v.decision = decision;
    v.score = isnan(score) ? 0.0 : score < 0.0 ? 0.0 : score > 1.0 ? 1.0 : score;
    v.reason = string_vformat(reason, args);
    return v;
}

arbiter_verdict_t arbiter_verdict_new(arbiter_decision_t decision, double score, const char *reason, ...) {
    va_list args;
    va_start(args, reason);
    arbiter_verdict_t v = verdict_v(decision, score, reason, args);
    va_end(args);
    return v;
}

arbiter_verdict_t arbiter_verdict_accept(double score, const char *reason, ...) {
    va_list args;
    va_start(args, reason);
    arbiter_verdict_t v = verdict_v(ARBITER_DECISION_ACCEPT, score, reason, args);
    va_end(args);
    return v;
}

arbiter_verdict_t arbiter_verdict_reject(double score, const char *reason, ...) {
    va_list args;
    va_start(args, reason);
    arbiter_verdict_t v = verdict_v(ARBITER_DECISION_REJECT, score, reason, args);
    va_end(args);
    return v;
}

arbiter_verdict_t arbiter_verdict_abstain(const char *reason, ...) {
    va_list args;
    va_start(args, reason);
    arbiter_verdict_t v = verdict_v(ARBITER_DECISION_ABSTAIN, 0.5, reason, args);
    va_end(args);
    return v;
}

void arbiter_verdict_with_check(arbiter_verdict_t *verdict, const char *name, bool passed, const char *message, ...) {
    arbiter_check_t *check = LIST_PUSH(verdict->checks);
    check->name = arbiter_string_new(name);
    check->passed = passed;
    if (message != NULL) {
        va_list args;
        va_start(args, message);
        check->message.is_some = true;
        check->message.val = string_vformat(message, args);
        va_end(args);
    }
}

void arbiter_verdict_with_details(arbiter_verdict_t *verdict, const char *json, ...) {
    if (verdict->details.is_some) {
        arbiter_string_free(&verdict->details.val);
    }
    va_list args;
    va_start(args, json);
    verdict->details.is_some = true;
    verdict->details.val = string_vformat(json, args);
    va_end(args);
}

arbiter_selection_t arbiter_selection_new(size_t count, const char *reason, ...) {
    arbiter_selection_t s;
    memset(&s, 0, sizeof s);
    if (count > 0) {
        s.scores.ptr = xcalloc(count, sizeof(double));
        s.scores.len = count;
    }
    va_list args;
    va_start(args, reason);
    s.reason = string_vformat(reason, args);
    va_end(args);
    return s;
}

/* ------------------------------------------------------------------ routes and plans */

#ifdef ARBITER_KIND_ROUTER
arbiter_route_decision_t arbiter_route_decision_new(const char *reason, ...) {
    arbiter_route_decision_t d;
    memset(&d, 0, sizeof d);
    va_list args;
    va_start(args, reason);
    d.reason = string_vformat(reason, args);
    va_end(args);
    return d;
}

arbiter_route_step_t *arbiter_route_decision_add_step(arbiter_route_decision_t *decision, arbiter_string_t target, uint32_t samples) {
    arbiter_route_step_t *step = LIST_PUSH(decision->steps);
    step->target = arbiter_string_copy(target.ptr, target.len);
    step->samples = samples < 1 ? 1 : samples;
    return step;
}

void arbiter_route_step_min_score(arbiter_route_step_t *step, double min_score) {
    step->min_score.is_some = true;
    step->min_score.val = min_score;
}
#endif

#ifdef ARBITER_KIND_DECOMPOSER
arbiter_plan_t arbiter_plan_new(const char *reason, ...) {
    arbiter_plan_t p;
    memset(&p, 0, sizeof p);
    va_list args;
    va_start(args, reason);
    p.reason = string_vformat(reason, args);
    va_end(args);
    return p;
}

arbiter_subtask_t *arbiter_plan_add_subtask(arbiter_plan_t *plan, arbiter_string_t id, arbiter_string_t prompt) {
    arbiter_subtask_t *subtask = LIST_PUSH(plan->subtasks);
    subtask->id = arbiter_string_copy(id.ptr, id.len);
    subtask->prompt = arbiter_string_copy(prompt.ptr, prompt.len);
    return subtask;
}

void arbiter_subtask_depends_on(arbiter_subtask_t *subtask, arbiter_string_t id) {
    arbiter_string_t *dep = LIST_PUSH(subtask->depends_on);
    *dep = arbiter_string_copy(id.ptr, id.len);
}

void arbiter_subtask_route(arbiter_subtask_t *subtask, arbiter_string_t route) {
    if (subtask->route.is_some) {
        arbiter_string_free(&subtask->route.val);
    }
    subtask->route.is_some = true;
    subtask->route.val = arbiter_string_copy(route.ptr, route.len);
}

void arbiter_subtask_verify(arbiter_subtask_t *subtask, arbiter_string_t verifier) {
    if (subtask->verify.is_some) {
        arbiter_string_free(&subtask->verify.val);
    }
    subtask->verify.is_some = true;
    subtask->verify.val = arbiter_string_copy(verifier.ptr, verifier.len);
}
#endif

/* ------------------------------------------------------------------ logging */

void arbiter_log(arbiter_log_level_t level, const char *message, const char *const fields[]) {
    arbiter_world_list_tuple2_string_string_t list = {NULL, 0};
    size_t n = 0;
    while (fields != NULL && fields[2 * n] != NULL && fields[2 * n + 1] != NULL) {
        n++;
    }
    arbiter_world_tuple2_string_string_t pairs[n > 0 ? n : 1];
    for (size_t i = 0; i < n; i++) {
        pairs[i].f0 = arbiter_str(fields[2 * i]);
        pairs[i].f1 = arbiter_str(fields[2 * i + 1]);
    }
    list.ptr = pairs;
    list.len = n;
    arbiter_string_t text = arbiter_str(message);
    /* Imports borrow their arguments: nothing to free. */
    arbiter_plugin_log_log(level, &text, &list);
}

static void log_v(arbiter_log_level_t level, const char *fmt, va_list args) {
    arbiter_string_t text = string_vformat(fmt, args);
    arbiter_world_list_tuple2_string_string_t none = {NULL, 0};
    arbiter_plugin_log_log(level, &text, &none);
    arbiter_string_free(&text);
}

#define LOG_FN(fn, level)                                                                  \
    void fn(const char *fmt, ...) {                                                        \
        va_list args;                                                                      \
        va_start(args, fmt);                                                               \
        log_v(level, fmt, args);                                                           \
        va_end(args);                                                                      \
    }
LOG_FN(arbiter_log_debug, ARBITER_LOG_DEBUG)
LOG_FN(arbiter_log_info, ARBITER_LOG_INFO)
LOG_FN(arbiter_log_warn, ARBITER_LOG_WARN)
LOG_FN(arbiter_log_error, ARBITER_LOG_ERROR)

/* ------------------------------------------------------------------ capabilities */

#ifdef ARBITER_CAPABILITY_MODEL
bool arbiter_model_complete(const arbiter_message_t *messages, size_t count, const char *model, uint32_t max_tokens, arbiter_completion_t *out, arbiter_model_error_t *err) {
    arbiter_plugin_model_completion_request_t request;
    memset(&request, 0, sizeof request);
    request.messages.ptr = (arbiter_message_t *)messages;
    request.messages.len = count;
    if (model != NULL) {
        request.model.is_some = true;
        request.model.val = arbiter_str(model);
    }
    if (max_tokens > 0) {
        request.max_tokens.is_some = true;
        request.max_tokens.val = max_tokens;
    }
    return arbiter_plugin_model_complete(&request, out, err);
}

void arbiter_completion_free(arbiter_completion_t *completion) {
    arbiter_plugin_model_completion_free(completion);
}

void arbiter_model_error_free(arbiter_model_error_t *err) {
    arbiter_plugin_model_model_error_free(err);
}
#endif

#ifdef ARBITER_CAPABILITY_STATS
bool arbiter_stats_query(arbiter_string_t model, const char *tag, arbiter_model_stats_t *out) {
    arbiter_string_t tag_view = arbiter_str(tag);
    return arbiter_plugin_stats_query(&model, tag != NULL ? &tag_view : NULL, out);
}
#endif

/* ------------------------------------------------------------------ exports */

/* The plugin value built from the last configuration seen. A fresh instance per call
 * starts empty; a warm (reused) instance skips `_new` while the settings stay the same. */
static struct {
    bool ready;
    arbiter_config_t config;
    void *self;
} state;

static bool config_equal(const arbiter_config_t *a, const arbiter_config_t *b) {
    if (a->len != b->len) {
        return false;
    }
    for (size_t i = 0; i < a->len; i++) {
        const arbiter_world_tuple2_string_string_t *x = &a->ptr[i], *y = &b->ptr[i];
        if (x->f0.len != y->f0.len || x->f1.len != y->f1.len ||
            (x->f0.len && memcmp(x->f0.ptr, y->f0.ptr, x->f0.len) != 0) ||
            (x->f1.len && memcmp(x->f1.ptr, y->f1.ptr, x->f1.len) != 0)) {
            return false;
        }
    }
    return true;
}

/* A tag no helper sets: a hook that returns false without filling `err` is reported as a
 * failure naming the hook instead of an empty error. */
#define ERR_UNSET 0xFF

static void err_prepare(arbiter_plugin_error_t *err) {
    memset(err, 0, sizeof *err);
    err->tag = ERR_UNSET;
}

static void err_finish(arbiter_plugin_error_t *err, const char *hook) {
    if (err->tag == ERR_UNSET) {
        err->tag = ARBITER_PLUGIN_ERROR_FAILED;
        err->val.failed = arbiter_string_format("%s returned false without setting an error", hook);
    }
}

typedef bool (*new_fn)(const arbiter_config_t *, void **, arbiter_plugin_error_t *);
typedef void (*drop_fn)(void *);

/* Takes ownership of `config` (the bindings hand export arguments to the callee). */
static bool with_state(arbiter_config_t *config, new_fn build, drop_fn drop, const char *hook, void **self, arbiter_plugin_error_t *err) {
    if (state.ready && config_equal(&state.config, config)) {
        arbiter_plugin_types_config_free(config);
        *self = state.self;
        return true;
    }
    void *built = NULL;
    err_prepare(err);
    if (!build(config, &built, err)) {
        err_finish(err, hook);
        arbiter_plugin_types_config_free(config);
        return false;
    }
    if (state.ready) {
        drop(state.self);
        arbiter_plugin_types_config_free(&state.config);
    }
    state.ready = true;
    state.config = *config;
    state.self = built;
    *self = built;
    return true;
}

#ifdef ARBITER_KIND_VERIFIER
__attribute__((weak)) bool arbiter_verifier_select(const void *self, const arbiter_task_t *task, const arbiter_judged_t *candidates, size_t count, arbiter_selection_t *selection, arbiter_plugin_error_t *err) {
    (void)self;
    (void)task;
    (void)err;
    *selection = arbiter_selection_new(count, "individual verdict scores");
    for (size_t i = 0; i < count; i++) {
        selection->scores.ptr[i] = arbiter_judged_score(&candidates[i]);
    }
    return true;
}

__attribute__((weak)) void arbiter_verifier_drop(void *self) {
    free(self);
}

void exports_arbiter_plugin_verification_info(exports_arbiter_plugin_verification_plugin_info_t *ret) {
    *ret = arbiter_verifier_info();
}

bool exports_arbiter_plugin_verification_check_config(exports_arbiter_plugin_verification_config_t *config, exports_arbiter_plugin_verification_plugin_error_t *err) {
    void *self;
    return with_state(config, arbiter_verifier_new, arbiter_verifier_drop, "arbiter_verifier_new", &self, err);
}

bool exports_arbiter_plugin_verification_verify(exports_arbiter_plugin_verification_config_t *config, exports_arbiter_plugin_verification_task_t *task, exports_arbiter_plugin_verification_candidate_t *candidate, exports_arbiter_plugin_verification_verdict_t *ret, exports_arbiter_plugin_verification_plugin_error_t *err) {
    void *self;
    bool ok = with_state(config, arbiter_verifier_new, arbiter_verifier_drop, "arbiter_verifier_new", &self, err);
    if (ok) {
        memset(ret, 0, sizeof *ret);
        err_prepare(err);
        ok = arbiter_verifier_verify(self, task, candidate, ret, err);
        if (!ok) {
            arbiter_plugin_types_verdict_free(ret);
            err_finish(err, "arbiter_verifier_verify");
        }
    }
    arbiter_plugin_types_task_free(task);
    arbiter_plugin_types_candidate_free(candidate);
    return ok;
}

bool exports_arbiter_plugin_verification_select(exports_arbiter_plugin_verification_config_t *config, exports_arbiter_plugin_verification_task_t *task, exports_arbiter_plugin_verification_list_judged_t *candidates, exports_arbiter_plugin_verification_selection_t *ret, exports_arbiter_plugin_verification_plugin_error_t *err) {
    void *self;
    bool ok = with_state(config, arbiter_verifier_new, arbiter_verifier_drop, "arbiter_verifier_new", &self, err);
    if (ok) {
        memset(ret, 0, sizeof *ret);
        err_prepare(err);
        ok = arbiter_verifier_select(self, task, candidates->ptr, candidates->len, ret, err);
        if (!ok) {
            arbiter_plugin_types_selection_free(ret);
            err_finish(err, "arbiter_verifier_select");
        }
    }
    arbiter_plugin_types_task_free(task);
    exports_arbiter_plugin_verification_list_judged_free(candidates);
    return ok;
}
#endif

#ifdef ARBITER_KIND_ROUTER
__attribute__((weak)) void arbiter_router_drop(void *self) {
    free(self);
}

void exports_arbiter_plugin_routing_info(exports_arbiter_plugin_routing_plugin_info_t *ret) {
    *ret = arbiter_router_info();
}

bool exports_arbiter_plugin_routing_check_config(exports_arbiter_plugin_routing_config_t *config, exports_arbiter_plugin_routing_plugin_error_t *err) {
    void *self;
    return with_state(config, arbiter_router_new, arbiter_router_drop, "arbiter_router_new", &self, err);
}

bool exports_arbiter_plugin_routing_route(exports_arbiter_plugin_routing_config_t *config, exports_arbiter_plugin_routing_task_t *task, exports_arbiter_plugin_routing_list_model_option_t *options, exports_arbiter_plugin_routing_route_decision_t *ret, exports_arbiter_plugin_routing_plugin_error_t *err) {
    void *self;
    bool ok = with_state(config, arbiter_router_new, arbiter_router_drop, "arbiter_router_new", &self, err);
    if (ok) {
        memset(ret, 0, sizeof *ret);
        err_prepare(err);
        ok = arbiter_router_route(self, task, options->ptr, options->len, ret, err);
        if (!ok) {
            exports_arbiter_plugin_routing_route_decision_free(ret);
            err_finish(err, "arbiter_router_route");
        }
    }
    arbiter_plugin_types_task_free(task);
    exports_arbiter_plugin_routing_list_model_option_free(options);
    return ok;
}
#endif

#ifdef ARBITER_KIND_DECOMPOSER
__attribute__((weak)) void arbiter_decomposer_drop(void *self) {
    free(self);
}

void exports_arbiter_plugin_decomposition_info(exports_arbiter_plugin_decomposition_plugin_info_t *ret) {
    *ret = arbiter_decomposer_info();
}

bool exports_arbiter_plugin_decomposition_check_config(exports_arbiter_plugin_decomposition_config_t *config, exports_arbiter_plugin_decomposition_plugin_error_t *err) {
    void *self;
    return with_state(config, arbiter_decomposer_new, arbiter_decomposer_drop, "arbiter_decomposer_new", &self, err);
}

bool exports_arbiter_plugin_decomposition_decompose(exports_arbiter_plugin_decomposition_config_t *config, exports_arbiter_plugin_decomposition_task_t *task, exports_arbiter_plugin_decomposition_plan_t *ret, exports_arbiter_plugin_decomposition_plugin_error_t *err) {
    void *self;
    bool ok = with_state(config, arbiter_decomposer_new, arbiter_decomposer_drop, "arbiter_decomposer_new", &self, err);
    if (ok) {
        memset(ret, 0, sizeof *ret);
        err_prepare(err);
        ok = arbiter_decomposer_decompose(self, task, ret, err);
        if (!ok) {
            exports_arbiter_plugin_decomposition_plan_free(ret);
            err_finish(err, "arbiter_decomposer_decompose");
        }
    }
    arbiter_plugin_types_task_free(task);
    return ok;
}

bool exports_arbiter_plugin_decomposition_compose(exports_arbiter_plugin_decomposition_config_t *config, exports_arbiter_plugin_decomposition_task_t *task, exports_arbiter_plugin_decomposition_list_subresult_t *results, arbiter_world_string_t *ret, exports_arbiter_plugin_decomposition_plugin_error_t *err) {
    void *self;
    bool ok = with_state(config, arbiter_decomposer_new, arbiter_decomposer_drop, "arbiter_decomposer_new", &self, err);
    if (ok) {
        memset(ret, 0, sizeof *ret);
        err_prepare(err);
        ok = arbiter_decomposer_compose(self, task, results->ptr, results->len, ret, err);
        if (!ok) {
            arbiter_string_free(ret);
            err_finish(err, "arbiter_decomposer_compose");
        }
    }
    arbiter_plugin_types_task_free(task);
    exports_arbiter_plugin_decomposition_list_subresult_free(results);
    return ok;
}
#endif
