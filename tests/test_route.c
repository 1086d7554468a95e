/* tests/test_route.c - cb-api's routes (api/route.c): every route with its
 * parameters, 404 for paths that are no route (bad names, extra segments),
 * 405 for a route asked with the wrong method. */
#include "cb_test.h"

#include <string.h>

#include "route.h"

static void expect(const char *m, const char *path, int rc, cb_route_id id)
{
    cb_route r;
    int got = cb_route_match(m, path, &r);
    if (got != rc || (rc != CB_ROUTE_NO_SUCH && r.id != id))
        fail_msg("%s %s: got %d (route %d), want %d (route %d)", m, path, got, (int)r.id, rc,
                 (int)id);
}

static void every_route_with_its_parameters(void **state)
{
    cb_route r;
    (void)state;
    expect("GET", "/v1/health", CB_ROUTE_MATCH, CB_ROUTE_HEALTH);
    expect("HEAD", "/v1/ready", CB_ROUTE_MATCH, CB_ROUTE_READY);
    expect("GET", "/v1/jobs", CB_ROUTE_MATCH, CB_ROUTE_JOBS);
    expect("POST", "/v1/jobs", CB_ROUTE_MATCH, CB_ROUTE_JOBS);
    expect("GET", "/metrics", CB_ROUTE_MATCH, CB_ROUTE_METRICS);
    expect("GET", "/v1/daemons", CB_ROUTE_MATCH, CB_ROUTE_DAEMONS);
    expect("GET", "/v1/daemons/stream", CB_ROUTE_MATCH, CB_ROUTE_DAEMONS_STREAM);
    expect("GET", "/v1/costs", CB_ROUTE_MATCH, CB_ROUTE_COSTS);
    expect("POST", "/v1/costs", CB_ROUTE_BAD_METHOD, CB_ROUTE_COSTS);
    expect("GET", "/v1/costs/x", CB_ROUTE_NO_SUCH, CB_ROUTE_NONE);
    assert_int_equal(cb_route_match("GET", "/v1/tenants/acme/cost", &r), CB_ROUTE_MATCH);
    assert_int_equal(r.id, CB_ROUTE_TENANT_COST);
    assert_string_equal(r.tenant, "acme");
    assert_int_equal(cb_route_match("GET", "/v1/jobs/acme/j-1_2", &r), CB_ROUTE_MATCH);
    assert_int_equal(r.id, CB_ROUTE_JOB);
    assert_string_equal(r.tenant, "acme");
    assert_string_equal(r.job, "j-1_2");
    expect("GET", "/v1/jobs/acme/j1/result", CB_ROUTE_MATCH, CB_ROUTE_RESULT);
    expect("GET", "/v1/jobs/acme/j1/events", CB_ROUTE_MATCH, CB_ROUTE_EVENTS);
    expect("GET", "/v1/jobs/acme/j1/tasks", CB_ROUTE_MATCH, CB_ROUTE_TASKS);
    expect("GET", "/v1/jobs/acme/j1/stream", CB_ROUTE_MATCH, CB_ROUTE_JOB_STREAM);
    assert_int_equal(cb_route_match("POST", "/v1/jobs/acme/j1/suspend", &r), CB_ROUTE_MATCH);
    assert_int_equal(r.id, CB_ROUTE_CONTROL);
    assert_string_equal(r.action, "suspend");
    assert_true(r.post);
    assert_int_equal(cb_route_match("GET", "/v1/tenants/acme/stream", &r), CB_ROUTE_MATCH);
    assert_int_equal(r.id, CB_ROUTE_TENANT_STREAM);
    assert_string_equal(r.tenant, "acme");
    assert_int_equal(cb_route_match("GET", "/", &r), CB_ROUTE_MATCH);
    assert_int_equal(r.id, CB_ROUTE_UI);
    assert_string_equal(r.file, "");
    assert_int_equal(cb_route_match("GET", "/ui/app.js", &r), CB_ROUTE_MATCH);
    assert_string_equal(r.file, "app.js");
    /* agreements */
    expect("GET", "/v1/tenants/acme/slas", CB_ROUTE_MATCH, CB_ROUTE_SLAS);
    expect("POST", "/v1/tenants/acme/slas", CB_ROUTE_MATCH, CB_ROUTE_SLAS);
    assert_int_equal(cb_route_match("DELETE", "/v1/tenants/acme/slas/p95-ok", &r), CB_ROUTE_MATCH);
    assert_int_equal(r.id, CB_ROUTE_SLA);
    assert_true(r.del);
    assert_string_equal(r.tenant, "acme");
    assert_string_equal(r.sla, "p95-ok");
    expect("GET", "/v1/tenants/acme/slas/p95-ok", CB_ROUTE_MATCH, CB_ROUTE_SLA);
    assert_int_equal(cb_route_match("POST", "/v1/tenants/acme/slas/a1/stop", &r), CB_ROUTE_MATCH);
    assert_int_equal(r.id, CB_ROUTE_SLA_STATE);
    assert_string_equal(r.action, "stop");
    assert_string_equal(r.sla, "a1");
}

static void paths_that_are_no_route(void **state)
{
    char longname[200];
    (void)state;
    memset(longname, 'a', sizeof longname);
    memcpy(longname, "/v1/jobs/", 9);
    strcpy(longname + 150, "/j");
    expect("GET", "", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v2/health", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/health/", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/healthz", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/daemons/x", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/daemons/stream/x", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/jobs/acme", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/jobs/acme/", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/jobs/ac.me/j1", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/jobs/acme/j%201", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/jobs/acme/j1/result/x", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/jobs/acme/j1/unknown", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/jobs//j1", CB_ROUTE_NO_SUCH, 0);
    expect("GET", longname, CB_ROUTE_NO_SUCH, 0); /* a tenant of 141 characters */
    expect("GET", "/v1/tenants/acme", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/tenants/acme/stream/x", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/ui/", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/tenants/acme/slas/a.b", CB_ROUTE_NO_SUCH, 0);
    expect("POST", "/v1/tenants/acme/slas/a1/pause", CB_ROUTE_NO_SUCH, 0);
    expect("POST", "/v1/tenants/acme/slas/a1/stop/x", CB_ROUTE_NO_SUCH, 0);
    expect("GET", "/v1/tenants/acme/slasx", CB_ROUTE_NO_SUCH, 0);
}

static void a_route_with_the_wrong_method_is_405(void **state)
{
    (void)state;
    expect("POST", "/v1/health", CB_ROUTE_BAD_METHOD, CB_ROUTE_HEALTH);
    expect("DELETE", "/v1/jobs", CB_ROUTE_BAD_METHOD, CB_ROUTE_JOBS);
    expect("POST", "/v1/jobs/acme/j1", CB_ROUTE_BAD_METHOD, CB_ROUTE_JOB);
    expect("GET", "/v1/jobs/acme/j1/cancel", CB_ROUTE_BAD_METHOD, CB_ROUTE_CONTROL);
    expect("PUT", "/v1/jobs/acme/j1/stream", CB_ROUTE_BAD_METHOD, CB_ROUTE_JOB_STREAM);
    expect("POST", "/metrics", CB_ROUTE_BAD_METHOD, CB_ROUTE_METRICS);
    expect("POST", "/v1/daemons", CB_ROUTE_BAD_METHOD, CB_ROUTE_DAEMONS);
    expect("DELETE", "/v1/tenants/acme/slas", CB_ROUTE_BAD_METHOD, CB_ROUTE_SLAS);
    expect("POST", "/v1/tenants/acme/slas/a1", CB_ROUTE_BAD_METHOD, CB_ROUTE_SLA);
    expect("GET", "/v1/tenants/acme/slas/a1/start", CB_ROUTE_BAD_METHOD, CB_ROUTE_SLA_STATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_route_with_its_parameters),
        cmocka_unit_test(paths_that_are_no_route),
        cmocka_unit_test(a_route_with_the_wrong_method_is_405),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
