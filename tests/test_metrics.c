/* tests/test_metrics.c - /metrics text (api/metrics_text.c): families once
 * each with HELP and TYPE before their samples, label values escaped, a
 * daemon down once its report is 3 periods old, histogram buckets
 * cumulative up to +Inf, the projector's lag from the newest engine
 * position, no store families without a store. */
#include "cb_test.h"

#include <stdlib.h>
#include <string.h>

#include "metrics_text.h"

static json_t *reports(void)
{
    return json_pack("{s:{s:{s:s, s:s, s:i, s:{s:b, s:i}, s:{s:i, s:i}}, s:f},"
                     " s:{s:{s:s, s:s, s:i, s:{s:b}, s:{s:s, s:i, s:i, s:i, s:i,"
                     " s:{s:[f, f], s:[i, i, i], s:f, s:i},"
                     " s:{s:[f, f], s:[i, i, i], s:f, s:i}}},"
                     " s:f}}",
                     "engine/e1", "report", "daemon", "engine", "id", "e1", "period_ms", 1000,
                     "broker", "connected", 1, "reconnects", 2, "engine", "log_seq", 120,
                     "dispatched", 7, "age_s", 0.5, "adapter/a\"1", "report", "daemon", "adapter",
                     "id", "a\"1", "period_ms", 1000, "broker", "connected", 0, "adapter",
                     "backend", "lo\\cal", "running", 3, "max_concurrency", 64, "received", 2,
                     "tasks", 9, "duration", "le", 0.001, 0.01, "counts", 1, 4, 5, "sum", 2.5,
                     "count", 5, "since_dispatch", "le", 0.001, 0.01, "counts", 0, 2, 5, "sum", 9.5,
                     "count", 5, "age_s", 3.5);
}

static void families_samples_and_escapes(void **state)
{
    json_t *r = reports();
    json_t *store = json_pack(
        "{s:i, s:{s:{s:i}}, s:{s:{s:i}}, s:{s:{s:{s:i, s:f, s:f}}, s:{s:{s:i, s:f, s:f}}}}",
        "position", 100, "jobs", "acme", "succeeded", 4, "tasks", "acme", "succeeded", 40, "costs",
        "tenants", "acme", "invocations", 40, "gb_s", 2.5, "amount", 0.0000417, "backends",
        "lambda-eu", "invocations", 40, "gb_s", 2.5, "amount", 0.0000417);
    char *t;
    (void)state;
    assert_non_null(r);
    assert_non_null(store);
    t = cb_metrics_text(r, store);
    assert_non_null(t);
    assert_non_null(strstr(t, "# HELP cbcore_jobs "));
    assert_non_null(strstr(
        t, "# TYPE cbcore_jobs gauge\ncbcore_jobs{tenant=\"acme\",state=\"succeeded\"} 4\n"));
    assert_non_null(strstr(t, "cbcore_projector_lag_events 20\n"));
    /* what invocations cost, per tenant and per account */
    assert_non_null(strstr(t, "# TYPE cbcore_tenant_cost_total counter\n"
                              "cbcore_tenant_cost_total{tenant=\"acme\"} 4.17e-05\n"));
    assert_non_null(strstr(t, "cbcore_tenant_gigabyte_seconds_total{tenant=\"acme\"} 2.5\n"));
    assert_non_null(strstr(t, "cbcore_backend_invocations_total{backend=\"lambda-eu\"} 40\n"));
    assert_non_null(strstr(t, "cbcore_backend_cost_total{backend=\"lambda-eu\"} 4.17e-05\n"));
    assert_non_null(strstr(t, "cbcore_daemon_up{daemon=\"engine\",id=\"e1\"} 1\n"));
    /* 3.5 s old at a 1 s period: down; the quote in the id is escaped */
    assert_non_null(strstr(t, "cbcore_daemon_up{daemon=\"adapter\",id=\"a\\\"1\"} 0\n"));
    assert_non_null(strstr(t, "cbcore_broker_reconnects_total{daemon=\"engine\",id=\"e1\"} 2\n"));
    assert_non_null(strstr(t,
                           "cbcore_adapter_invocations_in_flight{daemon=\"adapter\",id=\"a\\\"1\","
                           "backend=\"lo\\\\cal\"} 3\n"));
    assert_non_null(strstr(t,
                           "cbcore_adapter_invocation_duration_seconds_bucket{daemon=\"adapter\","
                           "id=\"a\\\"1\",backend=\"lo\\\\cal\",le=\"+Inf\"} 5\n"));
    assert_non_null(strstr(t, "le=\"0.01\"} 4\n"));
    assert_non_null(strstr(t, "cbcore_task_dispatch_to_outcome_seconds_sum{daemon=\"adapter\","
                              "id=\"a\\\"1\",backend=\"lo\\\\cal\"} 9.5\n"));
    /* commands and the tasks they carried, counted apart */
    assert_non_null(strstr(t, "cbcore_adapter_commands_received_total{daemon=\"adapter\","
                              "id=\"a\\\"1\",backend=\"lo\\\\cal\"} 2\n"));
    assert_non_null(strstr(t, "cbcore_adapter_tasks_received_total{daemon=\"adapter\","
                              "id=\"a\\\"1\",backend=\"lo\\\\cal\"} 9\n"));
    assert_non_null(strstr(t, "cbcore_adapter_invocation_duration_seconds_sum{daemon=\"adapter\","
                              "id=\"a\\\"1\",backend=\"lo\\\\cal\"} 2.5\n"));
    /* each family's TYPE once */
    {
        const char *p = strstr(t, "# TYPE cbcore_daemon_up");
        assert_non_null(p);
        assert_null(strstr(p + 1, "# TYPE cbcore_daemon_up"));
    }
    free(t);
    /* no store: no store families, no lag */
    t = cb_metrics_text(r, NULL);
    assert_non_null(t);
    assert_null(strstr(t, "cbcore_jobs"));
    assert_null(strstr(t, "cbcore_projector_lag_events"));
    assert_non_null(
        strstr(t, "cbcore_engine_tasks_dispatched_total{daemon=\"engine\",id=\"e1\"} 7\n"));
    free(t);
    json_decref(r);
    json_decref(store);
}

static void sla_accounting(void **state)
{
    json_t *r = json_pack(
        "{s:{s:{s:s, s:s, s:i, s:{s:i, s:i, s:[{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:b}]}},"
        " s:f}}",
        "sla/s1", "report", "daemon", "sla", "id", "s1", "period_ms", 1000, "sla", "events", 40,
        "appended", 3, "guarantees", "tenant", "acme", "agreement", "p95", "guarantee", "g",
        "state", "started", "evaluations", 12, "violations", 5, "breaches", 2, "compliant", 0,
        "age_s", 0.5);
    char *t;
    (void)state;
    assert_non_null(r);
    t = cb_metrics_text(r, NULL);
    assert_non_null(t);
    assert_non_null(strstr(t, "cbcore_sla_events_total{daemon=\"sla\",id=\"s1\"} 40\n"));
    assert_non_null(strstr(t, "# TYPE cbcore_sla_guarantee_breaches_total counter\n"
                              "cbcore_sla_guarantee_breaches_total{tenant=\"acme\","
                              "agreement=\"p95\",guarantee=\"g\",state=\"started\"} 2\n"));
    assert_non_null(strstr(t, "cbcore_sla_evaluations_total{tenant=\"acme\",agreement=\"p95\","
                              "guarantee=\"g\",state=\"started\"} 12\n"));
    assert_non_null(strstr(t, "cbcore_sla_compliant{tenant=\"acme\",agreement=\"p95\","
                              "guarantee=\"g\",state=\"started\"} 0\n"));
    free(t);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(families_samples_and_escapes),
        cmocka_unit_test(sla_accounting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
