/*
 * arbiter.h: write Arbiter plugins (verifiers, routers, decomposers) in C.
 *
 * The same concepts, with the same names, as the Rust SDK (`arbiter-sdk`):
 *
 *   Rust                                   C
 *   impl Verifier { info, new, verify,     arbiter_verifier_info / _new / _verify
 *                   select }               / _select (optional) / _drop (optional)
 *   impl Router { info, new, route }       arbiter_router_info / _new / _route
 *   impl Decomposer { info, new,           arbiter_decomposer_info / _new / _decompose
 *                     decompose, compose } / _compose
 *   Config::get / require / parse_or /     arbiter_config_get / _require / _parse_or_f64
 *     list / deny_unknown                    (_i64, _bool) / _list / _deny_unknown
 *   Verdict::accept / reject / abstain /   arbiter_verdict_accept / _reject / _abstain /
 *     new / with_check / with_details        _new / _with_check / _with_details
 *   PluginInfo::verifier / stateless /     arbiter_plugin_info_verifier / _stateless /
 *     config_key                             _config_key
 *   Task::prompt / meta / has_tag / tool   arbiter_task_prompt / _meta / _has_tag / _tool
 *   Message::new / user                    arbiter_message_new / _user
 *   Candidate::total_logprob               arbiter_candidate_total_logprob
 *   Judged::score                          arbiter_judged_score
 *   PluginError::InvalidConfig(..)         arbiter_plugin_error_invalid_config(err, ...)
 *   log::info(..)                          arbiter_log_info(...)
 *   model::complete, stats::query          arbiter_model_complete, arbiter_stats_query
 *
 * You implement the hooks of your plugin's kind (declared below); the SDK implements the
 * WIT exports on top of them. Like the Rust SDK it builds your plugin state with `_new`
 * once per configuration and keeps it while the host reuses the instance with the same
 * settings, so expensive preparation belongs in `_new`.
 *
 * `arbiter plugin build` generates the WIT bindings (`arbiter_world.h`) for the world that
 * `arbiter.toml` selects and defines the kind macro (ARBITER_KIND_VERIFIER, ...) and the
 * capability macros (ARBITER_CAPABILITY_MODEL, ARBITER_CAPABILITY_STATS).
 *
 * Conventions
 * - Results are booleans: `true` is success; on `false` the hook has filled `err`
 *   (the arbiter_plugin_error_* helpers fill it and return false, so
 *   `return arbiter_plugin_error_invalid_config(err, "...");` reads naturally).
 * - Strings are UTF-8 `arbiter_string_t` (pointer + length, not NUL-terminated).
 *   Arguments you pass to helpers are copied: names you write in code are `const char *`,
 *   text taken from inputs is an `arbiter_string_t` view, and human-readable messages
 *   (reasons, errors, log lines) are printf formats.
 * - Inputs (`task`, `candidate`, `config`, ...) are owned by the SDK and valid only
 *   during the call; copy what you keep. Lookups return views into them.
 * - Everything you return (verdicts, plans, strings) must be built with these helpers
 *   (or `malloc`): the generated bindings `free` it after the host has read it.
 * - Out of memory aborts the call (a trap the host reports), never returns NULL.
 */
#ifndef ARBITER_H
#define ARBITER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if !defined(__has_include) || __has_include("arbiter_world.h")
/* A build: `arbiter plugin build` wrote this world's bindings next to this header. */
#include "arbiter_world.h"
#else
/* An editor or a syntax check with only this folder on the include path: the bindings of
 * the contract's `host` world, which has every kind's exports and every capability's
 * imports, shipped in `bindings/`. Without a kind macro every kind and capability is
 * declared, so any template compiles; the build still checks the real world. */
#include "bindings/arbiter_world.h"
#if !defined(ARBITER_KIND_VERIFIER) && !defined(ARBITER_KIND_ROUTER) && !defined(ARBITER_KIND_DECOMPOSER)
#define ARBITER_KIND_VERIFIER 1
#define ARBITER_KIND_ROUTER 1
#define ARBITER_KIND_DECOMPOSER 1
#ifndef ARBITER_CAPABILITY_MODEL
#define ARBITER_CAPABILITY_MODEL 1
#endif
#ifndef ARBITER_CAPABILITY_STATS
#define ARBITER_CAPABILITY_STATS 1
#endif
#define ARBITER_EDITOR_ALL_KINDS 1
#endif
#endif

#if !defined(ARBITER_EDITOR_ALL_KINDS) && (defined(ARBITER_KIND_VERIFIER) + defined(ARBITER_KIND_ROUTER) + defined(ARBITER_KIND_DECOMPOSER)) != 1
#error "arbiter.h: define exactly one of ARBITER_KIND_VERIFIER, ARBITER_KIND_ROUTER, ARBITER_KIND_DECOMPOSER (`arbiter plugin build` does, from the `kind` in arbiter.toml)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define ARBITER_SDK_VERSION "0.2.0"
/* The contract the SDK targets: `arbiter:plugin@0.2.0`. */
#define ARBITER_CONTRACT_VERSION "0.2.0"

#define ARBITER_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))

/* ------------------------------------------------------------------ types */

typedef arbiter_world_string_t arbiter_string_t;
/* A function the request lets the model call: `name`, `description` (empty when none was
 * given) and `parameters`, its arguments' JSON Schema as JSON text (`{}` when none). */
typedef arbiter_plugin_types_tool_t arbiter_tool_t;
/* A call of a tool as the model made it: `id`, `name`, and `arguments` as JSON text,
 * exactly as written (it may not be valid JSON, let alone match the tool's schema). */
typedef arbiter_plugin_types_tool_call_t arbiter_tool_call_t;
/* One generated token, its `logprob`, and in `top` (pairs `f0` token, `f1` logprob) the
 * likeliest alternatives when the request asked for `top_logprobs`. */
typedef arbiter_plugin_types_token_logprob_t arbiter_token_logprob_t;
/* `role`, `content` (empty for an assistant message that only calls tools), `tool_calls`
 * (the calls an assistant message made; `.ptr`/`.len`) and `tool_call_id` (`.is_some`/
 * `.val`: the call a `tool` message answers). */
typedef arbiter_plugin_types_message_t arbiter_message_t;
typedef arbiter_plugin_types_config_t arbiter_config_t;
typedef arbiter_plugin_types_task_t arbiter_task_t;
/* `index`, `model`, `text` (empty when the model only called tools), `tool_calls` and
 * `logprobs` (per token of `text`; empty unless the request asked for them). */
typedef arbiter_plugin_types_candidate_t arbiter_candidate_t;
typedef arbiter_plugin_types_decision_t arbiter_decision_t;
typedef arbiter_plugin_types_check_t arbiter_check_t;
typedef arbiter_plugin_types_verdict_t arbiter_verdict_t;
typedef arbiter_plugin_types_judged_t arbiter_judged_t;
typedef arbiter_plugin_types_selection_t arbiter_selection_t;
typedef arbiter_plugin_types_model_stats_t arbiter_model_stats_t;
typedef arbiter_plugin_types_plugin_kind_t arbiter_plugin_kind_t;
typedef arbiter_plugin_types_config_key_t arbiter_config_key_t;
typedef arbiter_plugin_types_plugin_info_t arbiter_plugin_info_t;
typedef arbiter_plugin_types_plugin_error_t arbiter_plugin_error_t;
typedef arbiter_plugin_log_level_t arbiter_log_level_t;

#define ARBITER_DECISION_ACCEPT ARBITER_PLUGIN_TYPES_DECISION_ACCEPT
#define ARBITER_DECISION_REJECT ARBITER_PLUGIN_TYPES_DECISION_REJECT
#define ARBITER_DECISION_ABSTAIN ARBITER_PLUGIN_TYPES_DECISION_ABSTAIN

#define ARBITER_PLUGIN_ERROR_INVALID_CONFIG ARBITER_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_CONFIG
#define ARBITER_PLUGIN_ERROR_INVALID_INPUT ARBITER_PLUGIN_TYPES_PLUGIN_ERROR_INVALID_INPUT
#define ARBITER_PLUGIN_ERROR_FAILED ARBITER_PLUGIN_TYPES_PLUGIN_ERROR_FAILED

#define ARBITER_LOG_TRACE ARBITER_PLUGIN_LOG_LEVEL_TRACE
#define ARBITER_LOG_DEBUG ARBITER_PLUGIN_LOG_LEVEL_DEBUG
#define ARBITER_LOG_INFO ARBITER_PLUGIN_LOG_LEVEL_INFO
#define ARBITER_LOG_WARN ARBITER_PLUGIN_LOG_LEVEL_WARN
#define ARBITER_LOG_ERROR ARBITER_PLUGIN_LOG_LEVEL_ERROR

#ifdef ARBITER_KIND_ROUTER
typedef exports_arbiter_plugin_routing_model_option_t arbiter_model_option_t;
typedef exports_arbiter_plugin_routing_route_step_t arbiter_route_step_t;
typedef exports_arbiter_plugin_routing_route_decision_t arbiter_route_decision_t;
#endif

#ifdef ARBITER_KIND_DECOMPOSER
typedef exports_arbiter_plugin_decomposition_subtask_t arbiter_subtask_t;
typedef exports_arbiter_plugin_decomposition_plan_t arbiter_plan_t;
typedef exports_arbiter_plugin_decomposition_subresult_t arbiter_subresult_t;
#endif

/* ------------------------------------------------------------------ strings */

/* A view of a string literal (not copied; never return it as a result). */
#define ARBITER_STR(literal) ((arbiter_string_t){(uint8_t *)(literal), sizeof(literal) - 1})

/* A view of a NUL-terminated string (not copied). */
arbiter_string_t arbiter_str(const char *s);
/* An owned copy of a NUL-terminated string. */
arbiter_string_t arbiter_string_new(const char *s);
/* An owned copy of `len` bytes. */
arbiter_string_t arbiter_string_copy(const void *ptr, size_t len);
/* An owned string from a printf format. */
arbiter_string_t arbiter_string_format(const char *fmt, ...) ARBITER_PRINTF(1, 2);
/* Appends bytes / a printf format to an owned string. */
void arbiter_string_append(arbiter_string_t *s, const void *ptr, size_t len);
void arbiter_string_appendf(arbiter_string_t *s, const char *fmt, ...) ARBITER_PRINTF(2, 3);
/* Frees an owned string and leaves it empty. */
void arbiter_string_free(arbiter_string_t *s);
/* True when `s` holds exactly the bytes of the NUL-terminated `c`. */
bool arbiter_string_eq(arbiter_string_t s, const char *c);
/* True when `a` and `b` hold the same bytes. */
bool arbiter_string_equal(arbiter_string_t a, arbiter_string_t b);
/* A malloc'd NUL-terminated copy; free() it. Embedded NUL bytes are kept as they are. */
char *arbiter_string_cstr(arbiter_string_t s);
/* A view of `s` without leading and trailing Unicode whitespace (as Rust's str::trim). */
arbiter_string_t arbiter_string_trim(arbiter_string_t s);
/* The number of Unicode scalar values (characters) in valid UTF-8 `s`. */
size_t arbiter_string_chars(arbiter_string_t s);

/* ------------------------------------------------------------------ errors */

/* Each fills `err` (the message is a printf format) and returns false. */
bool arbiter_plugin_error_invalid_config(arbiter_plugin_error_t *err, const char *fmt, ...) ARBITER_PRINTF(2, 3);
bool arbiter_plugin_error_invalid_input(arbiter_plugin_error_t *err, const char *fmt, ...) ARBITER_PRINTF(2, 3);
bool arbiter_plugin_error_failed(arbiter_plugin_error_t *err, const char *fmt, ...) ARBITER_PRINTF(2, 3);

/* ------------------------------------------------------------------ config */

/* The last value given for `key` (later settings override earlier ones), or NULL. */
const arbiter_string_t *arbiter_config_get(const arbiter_config_t *config, const char *key);
/* The value of `key`, or an invalid-config error naming it. */
bool arbiter_config_require(const arbiter_config_t *config, const char *key, const arbiter_string_t **value, arbiter_plugin_error_t *err);
/* Parses `key` (surrounding whitespace ignored), falling back to `default_value` when it is
 * absent; a value that does not parse is an invalid-config error naming the key. Booleans
 * are `true` or `false`. */
bool arbiter_config_parse_or_f64(const arbiter_config_t *config, const char *key, double default_value, double *value, arbiter_plugin_error_t *err);
bool arbiter_config_parse_or_i64(const arbiter_config_t *config, const char *key, int64_t default_value, int64_t *value, arbiter_plugin_error_t *err);
bool arbiter_config_parse_or_bool(const arbiter_config_t *config, const char *key, bool default_value, bool *value, arbiter_plugin_error_t *err);
/* A comma-separated list setting: writes up to `max_items` trimmed, non-empty views into
 * `items` and returns how many items there are in all (0 when the key is absent). */
size_t arbiter_config_list(const arbiter_config_t *config, const char *key, arbiter_string_t *items, size_t max_items);
/* Fails with invalid-config when a key outside `known` (NULL-terminated) is present, so
 * typos in a pipeline configuration are caught at load time. */
bool arbiter_config_deny_unknown(const arbiter_config_t *config, const char *const known[], arbiter_plugin_error_t *err);

/* ------------------------------------------------------------------ task, candidate, judged */

/* The task's `tools`, a candidate's or an assistant message's `tool_calls` and a
 * candidate's `logprobs` are lists (`.ptr`, `.len`) you read directly:
 *
 *     for (size_t i = 0; i < candidate->tool_calls.len; i++) {
 *         const arbiter_tool_call_t *call = &candidate->tool_calls.ptr[i];
 *         if (arbiter_task_tool(task, call->name) == NULL) ...
 *     }
 */

/* The content of the last user message (the question in single-turn tasks), else of the
 * last message, else empty. */
arbiter_string_t arbiter_task_prompt(const arbiter_task_t *task);
/* A metadata value by key, or NULL. */
const arbiter_string_t *arbiter_task_meta(const arbiter_task_t *task, const char *key);
bool arbiter_task_has_tag(const arbiter_task_t *task, const char *tag);
/* A tool the request offers, by name (e.g. a tool call's `name`, or ARBITER_STR("...")),
 * or NULL. */
const arbiter_tool_t *arbiter_task_tool(const arbiter_task_t *task, arbiter_string_t name);
/* The log-probability of the candidate's whole text (the sum over its tokens) into
 * `*total`; false (and `*total` untouched) when it has no logprobs. */
bool arbiter_candidate_total_logprob(const arbiter_candidate_t *candidate, double *total);
/* A text message with no tool calls, for arbiter_model_complete (views, not copied).
 * Build messages with these (or zero-initialise them) so the tool fields are empty. */
arbiter_message_t arbiter_message_new(arbiter_string_t role, arbiter_string_t content);
/* A user message (a view of `content`, not copied). */
arbiter_message_t arbiter_message_user(arbiter_string_t content);
/* The verdict's score, or 0 when verification of this candidate failed. */
double arbiter_judged_score(const arbiter_judged_t *judged);

/* ------------------------------------------------------------------ plugin info */

arbiter_plugin_info_t arbiter_plugin_info_verifier(const char *name, const char *version, const char *description);
arbiter_plugin_info_t arbiter_plugin_info_router(const char *name, const char *version, const char *description);
arbiter_plugin_info_t arbiter_plugin_info_decomposer(const char *name, const char *version, const char *description);
/* Declares that calls keep no state, so the host may reuse warm instances. */
void arbiter_plugin_info_stateless(arbiter_plugin_info_t *info);
/* Documents a setting (shown by `arbiter plugin inspect`); `default_value` may be NULL. */
void arbiter_plugin_info_config_key(arbiter_plugin_info_t *info, const char *name, const char *description, const char *default_value);

/* ------------------------------------------------------------------ verdicts */

/* Scores are clamped into [0, 1] (NaN becomes 0); reasons are printf formats. */
arbiter_verdict_t arbiter_verdict_accept(double score, const char *reason, ...) ARBITER_PRINTF(2, 3);
arbiter_verdict_t arbiter_verdict_reject(double score, const char *reason, ...) ARBITER_PRINTF(2, 3);
/* The verifier cannot judge this candidate (score 0.5: no information). */
arbiter_verdict_t arbiter_verdict_abstain(const char *reason, ...) ARBITER_PRINTF(1, 2);
arbiter_verdict_t arbiter_verdict_new(arbiter_decision_t decision, double score, const char *reason, ...) ARBITER_PRINTF(3, 4);
/* Adds a named check (a test, a rule); `message` may be NULL (no message). */
void arbiter_verdict_with_check(arbiter_verdict_t *verdict, const char *name, bool passed, const char *message, ...) ARBITER_PRINTF(4, 5);
/* Attaches a JSON value (as text, a printf format) that the host stores with the trace. */
void arbiter_verdict_with_details(arbiter_verdict_t *verdict, const char *json, ...) ARBITER_PRINTF(2, 3);
/* A selection with `count` zero scores to fill in. */
arbiter_selection_t arbiter_selection_new(size_t count, const char *reason, ...) ARBITER_PRINTF(2, 3);

/* ------------------------------------------------------------------ routes and plans */

#ifdef ARBITER_KIND_ROUTER
arbiter_route_decision_t arbiter_route_decision_new(const char *reason, ...) ARBITER_PRINTF(1, 2);
/* Appends a step (target copied, samples at least 1) and returns it; the pointer is valid
 * until the next step is added. */
arbiter_route_step_t *arbiter_route_decision_add_step(arbiter_route_decision_t *decision, arbiter_string_t target, uint32_t samples);
/* Escalate past this step unless the best verified score reaches `min_score`. */
void arbiter_route_step_min_score(arbiter_route_step_t *step, double min_score);
#endif

#ifdef ARBITER_KIND_DECOMPOSER
/* An empty plan means "do not decompose". */
arbiter_plan_t arbiter_plan_new(const char *reason, ...) ARBITER_PRINTF(1, 2);
/* Appends a sub-task (id and prompt copied) and returns it; the pointer is valid until the
 * next sub-task is added. */
arbiter_subtask_t *arbiter_plan_add_subtask(arbiter_plan_t *plan, arbiter_string_t id, arbiter_string_t prompt);
void arbiter_subtask_depends_on(arbiter_subtask_t *subtask, arbiter_string_t id);
/* Hints naming the pipeline or model (`route`) and the verifier (`verify`) for this step. */
void arbiter_subtask_route(arbiter_subtask_t *subtask, arbiter_string_t route);
void arbiter_subtask_verify(arbiter_subtask_t *subtask, arbiter_string_t verifier);
#endif

/* ------------------------------------------------------------------ logging */

/* Structured logs the host keeps with the call (bounded per call by the host). */
void arbiter_log_debug(const char *fmt, ...) ARBITER_PRINTF(1, 2);
void arbiter_log_info(const char *fmt, ...) ARBITER_PRINTF(1, 2);
void arbiter_log_warn(const char *fmt, ...) ARBITER_PRINTF(1, 2);
void arbiter_log_error(const char *fmt, ...) ARBITER_PRINTF(1, 2);
/* A log line with fields: `fields` is key, value, key, value, ..., NULL (or NULL). */
void arbiter_log(arbiter_log_level_t level, const char *message, const char *const fields[]);

/* ------------------------------------------------------------------ capabilities */

#ifdef ARBITER_CAPABILITY_MODEL
typedef arbiter_plugin_model_completion_t arbiter_completion_t;
typedef arbiter_plugin_model_model_error_t arbiter_model_error_t;
#define ARBITER_MODEL_ERROR_DENIED ARBITER_PLUGIN_MODEL_MODEL_ERROR_DENIED
#define ARBITER_MODEL_ERROR_OVER_BUDGET ARBITER_PLUGIN_MODEL_MODEL_ERROR_OVER_BUDGET
#define ARBITER_MODEL_ERROR_FAILED ARBITER_PLUGIN_MODEL_MODEL_ERROR_FAILED
/* Asks the host's models for a completion. `model` NULL lets the pipeline choose;
 * `max_tokens` 0 means the host's default. On success free `out` with
 * arbiter_completion_free, on failure free `err` with arbiter_model_error_free. */
bool arbiter_model_complete(const arbiter_message_t *messages, size_t count, const char *model, uint32_t max_tokens, arbiter_completion_t *out, arbiter_model_error_t *err);
void arbiter_completion_free(arbiter_completion_t *completion);
void arbiter_model_error_free(arbiter_model_error_t *err);
#else
/* Without the capability the world has no `model` import: these names exist only to
 * make the compiler say what to add. */
typedef struct arbiter_completion_needs_capabilities_model_in_arbiter_toml arbiter_completion_t;
typedef struct arbiter_model_error_needs_capabilities_model_in_arbiter_toml arbiter_model_error_t;
__attribute__((unavailable("add `capabilities = [\"model\"]` to arbiter.toml (verifiers and decomposers only)")))
bool arbiter_model_complete(const arbiter_message_t *messages, size_t count, const char *model, uint32_t max_tokens, arbiter_completion_t *out, arbiter_model_error_t *err);
__attribute__((unavailable("add `capabilities = [\"model\"]` to arbiter.toml (verifiers and decomposers only)")))
void arbiter_completion_free(arbiter_completion_t *completion);
__attribute__((unavailable("add `capabilities = [\"model\"]` to arbiter.toml (verifiers and decomposers only)")))
void arbiter_model_error_free(arbiter_model_error_t *err);
#endif

#ifdef ARBITER_CAPABILITY_STATS
/* Observed outcomes of `model` (for tasks tagged `tag` unless NULL); false when nothing
 * has been recorded yet. */
bool arbiter_stats_query(arbiter_string_t model, const char *tag, arbiter_model_stats_t *out);
#else
__attribute__((unavailable("add `capabilities = [\"stats\"]` to arbiter.toml (routers only)")))
bool arbiter_stats_query(arbiter_string_t model, const char *tag, arbiter_model_stats_t *out);
#endif

/* ------------------------------------------------------------------ hooks you implement */

#ifdef ARBITER_KIND_VERIFIER
/* Metadata shown by `arbiter plugin inspect` and checked by the host at load. */
arbiter_plugin_info_t arbiter_verifier_info(void);
/* Builds the verifier from its pipeline settings into `*self`: NULL, or memory from
 * malloc (the default `_drop` frees it), or anything your own `_drop` releases.
 * An error refuses the pipeline. */
bool arbiter_verifier_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err);
bool arbiter_verifier_verify(const void *self, const arbiter_task_t *task, const arbiter_candidate_t *candidate, arbiter_verdict_t *verdict, arbiter_plugin_error_t *err);
/* Optional cross-candidate step; the SDK's default keeps each candidate's own verdict score. */
bool arbiter_verifier_select(const void *self, const arbiter_task_t *task, const arbiter_judged_t *candidates, size_t count, arbiter_selection_t *selection, arbiter_plugin_error_t *err);
/* Optional: releases what `_new` built when the settings change; the default calls free(). */
void arbiter_verifier_drop(void *self);
#endif

#ifdef ARBITER_KIND_ROUTER
arbiter_plugin_info_t arbiter_router_info(void);
bool arbiter_router_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err);
bool arbiter_router_route(const void *self, const arbiter_task_t *task, const arbiter_model_option_t *options, size_t count, arbiter_route_decision_t *decision, arbiter_plugin_error_t *err);
void arbiter_router_drop(void *self);
#endif

#ifdef ARBITER_KIND_DECOMPOSER
arbiter_plugin_info_t arbiter_decomposer_info(void);
bool arbiter_decomposer_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err);
/* An empty plan means the task is answered directly. */
bool arbiter_decomposer_decompose(const void *self, const arbiter_task_t *task, arbiter_plan_t *plan, arbiter_plugin_error_t *err);
/* Composes the final answer from the sub-tasks' answers (in plan order) into `answer`. */
bool arbiter_decomposer_compose(const void *self, const arbiter_task_t *task, const arbiter_subresult_t *results, size_t count, arbiter_string_t *answer, arbiter_plugin_error_t *err);
void arbiter_decomposer_drop(void *self);
#endif

#ifdef __cplusplus
}
#endif

#endif /* ARBITER_H */
