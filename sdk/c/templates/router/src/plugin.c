/*
 * {{name}}: an Arbiter router.
 *
 * It starts with the example policy every `arbiter plugin new` template implements, so
 * its decisions can be compared across languages: try the cheapest model first (with
 * `samples` candidates), then escalate to the priciest one.
 * Replace `arbiter_router_route` with your own policy and `cases.jsonl` with your own cases.
 */
#include <stdlib.h>

#include "arbiter.h"

typedef struct {
    uint32_t samples;
} cheapest_first_t;

arbiter_plugin_info_t arbiter_router_info(void) {
    arbiter_plugin_info_t info = arbiter_plugin_info_router("{{name}}", "0.1.0", "Tries the cheapest model first, then escalates to the priciest");
    arbiter_plugin_info_stateless(&info);
    arbiter_plugin_info_config_key(&info, "samples", "Candidates to sample from the cheapest model", "1");
    return info;
}

/* Parses the settings once; the SDK keeps the result while they stay the same. */
bool arbiter_router_new(const arbiter_config_t *config, void **self, arbiter_plugin_error_t *err) {
    int64_t samples;
    if (!arbiter_config_parse_or_i64(config, "samples", 1, &samples, err)) {
        return false;
    }
    if (samples < 1 || samples > UINT32_MAX) {
        return arbiter_plugin_error_invalid_config(err, "setting `samples` must be at least 1 (got %lld)", (long long)samples);
    }
    cheapest_first_t *r = malloc(sizeof *r);
    if (r == NULL) {
        return arbiter_plugin_error_failed(err, "out of memory");
    }
    r->samples = (uint32_t)samples;
    *self = r;
    return true;
}

static double price(const arbiter_model_option_t *o) {
    return o->input_price + o->output_price;
}

bool arbiter_router_route(const void *self, const arbiter_task_t *task, const arbiter_model_option_t *options, size_t count, arbiter_route_decision_t *decision, arbiter_plugin_error_t *err) {
    const cheapest_first_t *r = self;
    (void)task;
    if (count == 0) {
        return arbiter_plugin_error_invalid_input(err, "no models to route between");
    }
    /* The first option wins ties, both ways. */
    size_t cheapest = 0, priciest = 0;
    for (size_t i = 0; i < count; i++) {
        if (price(&options[i]) < price(&options[cheapest])) {
            cheapest = i;
        }
        if (price(&options[i]) > price(&options[priciest])) {
            priciest = i;
        }
    }
    const arbiter_string_t *first = &options[cheapest].name, *last = &options[priciest].name;
    if (priciest != cheapest) {
        *decision = arbiter_route_decision_new("cheapest first: %.*s -> %.*s", (int)first->len, (const char *)first->ptr, (int)last->len, (const char *)last->ptr);
    } else {
        *decision = arbiter_route_decision_new("cheapest first: %.*s", (int)first->len, (const char *)first->ptr);
    }
    /* No min-score: escalate only when no candidate is accepted. */
    arbiter_route_decision_add_step(decision, *first, r->samples);
    if (priciest != cheapest) {
        arbiter_route_decision_add_step(decision, *last, 1);
    }
    return true;
}
