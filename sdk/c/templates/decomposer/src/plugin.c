/*
 * {{name}}: an Arbiter decomposer.
 *
 * It starts with the example split every `arbiter plugin new` template implements, so its
 * plans can be compared across languages: each line starting with "- " becomes a sub-task
 * (`s1`, `s2`, ...), unless there are fewer than two; the answers are joined with
 * newlines. Replace `arbiter_decomposer_decompose` / `_compose` and `cases.jsonl` with
 * your own.
 */
#include <stdio.h>

#include "arbiter.h"

arbiter_plugin_info_t arbiter_decomposer_info(void) {
    arbiter_plugin_info_t info = arbiter_plugin_info_decomposer("{{name}}", "0.1.0", "One sub-task per bullet point; answers joined in order");
    arbiter_plugin_info_stateless(&info);
    return info;
}

bool arbiter_decomposer_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err) {
    (void)config;
    (void)err;
    *self = NULL; /* no settings, no state */
    return true;
}

/* Counts the lines that start with "- " and, given a plan, adds each one's trimmed text
 * as sub-task s1, s2, ... */
static size_t bullets(arbiter_string_t prompt, arbiter_plan_t *plan) {
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= prompt.len; i++) {
        if (i < prompt.len && prompt.ptr[i] != '\n') {
            continue;
        }
        arbiter_string_t line = {prompt.ptr + start, i - start};
        if (line.len > 0 && line.ptr[line.len - 1] == '\r') {
            line.len--;
        }
        if (line.len >= 2 && line.ptr[0] == '-' && line.ptr[1] == ' ') {
            count++;
            if (plan != NULL) {
                char id[32];
                snprintf(id, sizeof id, "s%zu", count);
                arbiter_string_t item = {line.ptr + 2, line.len - 2};
                arbiter_plan_add_subtask(plan, arbiter_str(id), arbiter_string_trim(item));
            }
        }
        start = i + 1;
    }
    return count;
}

bool arbiter_decomposer_decompose(const void *self, const arbiter_task_t *task, arbiter_plan_t *plan, arbiter_plugin_error_t *err) {
    (void)self;
    (void)err;
    arbiter_string_t prompt = arbiter_task_prompt(task);
    size_t count = bullets(prompt, NULL);
    if (count < 2) {
        /* An empty plan: the host answers the task directly. */
        *plan = arbiter_plan_new("%zu bullet point(s): answer directly", count);
        return true;
    }
    *plan = arbiter_plan_new("%zu bullet points", count);
    bullets(prompt, plan);
    return true;
}

bool arbiter_decomposer_compose(const void *self, const arbiter_task_t *task, const arbiter_subresult_t *results, size_t count, arbiter_string_t *answer, arbiter_plugin_error_t *err) {
    (void)self;
    (void)task;
    (void)err;
    for (size_t i = 0; i < count; i++) {
        if (i > 0) {
            arbiter_string_append(answer, "\n", 1);
        }
        arbiter_string_append(answer, results[i].answer.ptr, results[i].answer.len);
    }
    return true;
}
