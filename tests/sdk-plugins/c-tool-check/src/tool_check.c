/*
 * Accepts a candidate iff every tool it calls is one the task offers (the rule of
 * `tests/vectors/tool-calls.jsonl`).
 */
#include <math.h>
#include <stdlib.h>

#include "arbiter.h"

arbiter_plugin_info_t arbiter_verifier_info(void) {
    arbiter_plugin_info_t info = arbiter_plugin_info_verifier("c-tool-check", "0.1.0", "Calls only offered tools");
    arbiter_plugin_info_stateless(&info);
    return info;
}

bool arbiter_verifier_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err) {
    (void)config;
    (void)err;
    *self = NULL;
    return true;
}

/* Whether an assistant message of `task` made the call `id`. */
static bool asked(const arbiter_task_t *task, arbiter_string_t id) {
    for (size_t i = 0; i < task->messages.len; i++) {
        const arbiter_message_t *m = &task->messages.ptr[i];
        if (!arbiter_string_eq(m->role, "assistant")) {
            continue;
        }
        for (size_t j = 0; j < m->tool_calls.len; j++) {
            if (arbiter_string_equal(m->tool_calls.ptr[j].id, id)) {
                return true;
            }
        }
    }
    return false;
}

bool arbiter_verifier_verify(const void *self, const arbiter_task_t *task, const arbiter_candidate_t *candidate, arbiter_verdict_t *verdict, arbiter_plugin_error_t *err) {
    (void)self;
    (void)err;
    const arbiter_tool_call_t *calls = candidate->tool_calls.ptr;
    size_t count = candidate->tool_calls.len;
    if (count == 0) {
        *verdict = arbiter_verdict_abstain("no tool call");
        return true;
    }
    arbiter_string_t unknown = {NULL, 0};
    arbiter_string_t names = {NULL, 0};
    for (size_t i = 0; i < count; i++) {
        const char *sep = i > 0 ? "," : "";
        arbiter_string_appendf(&names, "%s%.*s", sep, (int)calls[i].name.len, (const char *)calls[i].name.ptr);
        if (arbiter_task_tool(task, calls[i].name) == NULL) {
            arbiter_string_appendf(&unknown, "%s%.*s", unknown.len > 0 ? "," : "", (int)calls[i].name.len, (const char *)calls[i].name.ptr);
        }
    }
    if (unknown.len > 0) {
        *verdict = arbiter_verdict_reject(0.0, "unknown tools: %.*s", (int)unknown.len, (const char *)unknown.ptr);
    } else {
        size_t answered = 0;
        for (size_t i = 0; i < task->messages.len; i++) {
            const arbiter_message_t *m = &task->messages.ptr[i];
            if (arbiter_string_eq(m->role, "tool") && m->tool_call_id.is_some && asked(task, m->tool_call_id.val)) {
                answered++;
            }
        }
        size_t alternatives = 0;
        for (size_t i = 0; i < candidate->logprobs.len; i++) {
            alternatives += candidate->logprobs.ptr[i].top.len;
        }
        double total = 0.0;
        double score = arbiter_candidate_total_logprob(candidate, &total) ? exp(total) : 1.0;
        *verdict = arbiter_verdict_accept(score, "calls %.*s; %zu answered before; %zu tokens, %zu alternatives", (int)names.len, (const char *)names.ptr, answered, candidate->logprobs.len, alternatives);
    }
    for (size_t i = 0; i < count; i++) {
        char *name = arbiter_string_cstr(calls[i].name);
        arbiter_verdict_with_check(verdict, name, arbiter_task_tool(task, calls[i].name) != NULL, NULL);
        free(name);
    }
    arbiter_string_free(&unknown);
    arbiter_string_free(&names);
    return true;
}
