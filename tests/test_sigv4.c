/* tests/test_sigv4.c - AWS Signature Version 4 against AWS's published
 * test-suite vectors (aws-sig-v4-test-suite: credentials AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service",
 * 2015-08-30T12:36:00Z, host example.amazonaws.com). */
#include "cb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_sigv4.h"
#include "cb_url.h"

#define PREFIX                                                                                     \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "            \
    "SignedHeaders=host;x-amz-date, Signature="

static const cb_sigv4_header suite_headers[] = {
    {"Host", "example.amazonaws.com"},
    {"X-Amz-Date", "20150830T123600Z"},
};

static cb_sigv4_req suite(const char *method, const char *path, const char *query)
{
    cb_sigv4_req r = {0};
    r.method = method;
    r.path = path;
    r.query = query;
    r.headers = suite_headers;
    r.nheaders = 2;
    r.access_key = "AKIDEXAMPLE";
    r.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    r.region = "us-east-1";
    r.service = "service";
    r.amz_date = "20150830T123600Z";
    return r;
}

static void expect_signature(cb_sigv4_req r, const char *signature)
{
    char got[512], want[512];
    assert_int_equal(cb_sigv4_authorization(&r, got, sizeof got), CB_OK);
    snprintf(want, sizeof want, "%s%s", PREFIX, signature);
    assert_string_equal(got, want);
}

static void test_get_vanilla(void **state)
{
    (void)state;
    cb_sigv4_req r = suite("GET", "/", NULL);
    char *cr = cb_sigv4_canonical_request(&r);
    assert_non_null(cr);
    assert_string_equal(cr, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                            "host;x-amz-date\n"
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    free(cr);
    expect_signature(r, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_query_parameters_are_sorted(void **state)
{
    (void)state; /* get-vanilla-query-order-key-case */
    expect_signature(suite("GET", "/", "Param2=value2&Param1=value1"),
                     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void test_utf8_path_is_percent_encoded(void **state)
{
    (void)state; /* get-utf8: the path is U+1234 */
    expect_signature(suite("GET", "/\xe1\x88\xb4", NULL),
                     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

static void test_post_vanilla_and_query(void **state)
{
    (void)state;
    expect_signature(suite("POST", "/", NULL),
                     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    expect_signature(suite("POST", "/", "Param1=value1"), /* post-vanilla-query */
                     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11");
}

static void test_headers_are_lowercased_sorted_and_trimmed(void **state)
{
    (void)state;
    cb_sigv4_header hs[] = {
        {"X-Amz-Date", "20150830T123600Z"},
        {"My-Header1", "  value1   with  spaces "},
        {"host", "example.amazonaws.com"},
    };
    cb_sigv4_req r = suite("POST", "/2015-03-31/functions/my:fn/invocations", NULL);
    r.headers = hs;
    r.nheaders = 3;
    r.body = "{\"x\":1}";
    r.body_len = 7;
    char *cr = cb_sigv4_canonical_request(&r);
    assert_non_null(cr);
    assert_non_null(strstr(cr, "\n/2015-03-31/functions/my%3Afn/invocations\n"));
    assert_non_null(strstr(cr, "\nhost:example.amazonaws.com\nmy-header1:value1 with spaces\n"
                               "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n"));
    free(cr);
}

static void test_bad_requests_are_refused(void **state)
{
    char out[512];
    (void)state;
    cb_sigv4_req r = suite("GET", "/", NULL);
    r.nheaders = 1; /* no x-amz-date */
    assert_int_equal(cb_sigv4_authorization(&r, out, sizeof out), CB_EINVAL);
    r = suite("GET", "/", NULL);
    r.amz_date = "2015-08-30";
    assert_int_equal(cb_sigv4_authorization(&r, out, sizeof out), CB_EINVAL);
    r = suite("GET", "/", NULL);
    assert_int_equal(cb_sigv4_authorization(&r, out, 40), CB_ETOOBIG);
}

/* AWS's S3 documentation examples ("Signature Calculations for the
 * Authorization Header": GET Object with a range, and ListObjects), the
 * requests the s3 storage driver sends: service "s3", the payload hash
 * header, the query passed already encoded. */
static void test_s3_documented_examples(void **state)
{
    static const char empty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    cb_sigv4_header get_h[] = {{"host", "examplebucket.s3.amazonaws.com"},
                               {"range", "bytes=0-9"},
                               {"x-amz-content-sha256", empty},
                               {"x-amz-date", "20130524T000000Z"}};
    cb_sigv4_header list_h[] = {{"host", "examplebucket.s3.amazonaws.com"},
                                {"x-amz-content-sha256", empty},
                                {"x-amz-date", "20130524T000000Z"}};
    cb_sigv4_req r = {0};
    char out[512];
    (void)state;
    r.method = "GET";
    r.path = "/test.txt";
    r.headers = get_h;
    r.nheaders = 4;
    r.access_key = "AKIAIOSFODNN7EXAMPLE";
    r.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    r.region = "us-east-1";
    r.service = "s3";
    r.amz_date = "20130524T000000Z";
    assert_int_equal(cb_sigv4_authorization(&r, out, sizeof out), CB_OK);
    assert_string_equal(out, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
                             "s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;"
                             "x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba"
                             "48dd91039c6036bdb41");
    r.path = "/";
    r.query = "max-keys=2&prefix=J";
    r.query_encoded = 1;
    r.headers = list_h;
    r.nheaders = 3;
    assert_int_equal(cb_sigv4_authorization(&r, out, sizeof out), CB_OK);
    assert_non_null(strstr(out,
                           "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef"
                           "69dc6f7"));
}

/* An encoded query is sorted, not encoded again: a prefix holding '&' and
 * '=' signs as the same request sent with the raw value encoded. */
static void test_encoded_query_is_not_encoded_twice(void **state)
{
    char a[512], b[512], enc[64];
    cb_sigv4_req r = suite("GET", "/", NULL);
    (void)state;
    assert_int_equal(cb_url_encode("a&b=c d/ü", 0, enc, sizeof enc),
                     strlen("a%26b%3Dc%20d%2F%C3%BC"));
    assert_string_equal(enc, "a%26b%3Dc%20d%2F%C3%BC");
    assert_int_equal(cb_url_encode("x/y z", 1, enc, sizeof enc), 7);
    assert_string_equal(enc, "x/y%20z");
    assert_int_equal(cb_url_encode("abc", 0, enc, 3), 3); /* too small: "" */
    assert_string_equal(enc, "");
    r.query = "prefix=a%26b%3Dc&list-type=2";
    r.query_encoded = 1;
    assert_int_equal(cb_sigv4_authorization(&r, a, sizeof a), CB_OK);
    r.query = "list-type=2&prefix=a%26b%3Dc";
    assert_int_equal(cb_sigv4_authorization(&r, b, sizeof b), CB_OK);
    assert_string_equal(a, b); /* sorted the same */
    {
        char *cr = cb_sigv4_canonical_request(&r);
        assert_non_null(strstr(cr, "\nlist-type=2&prefix=a%26b%3Dc\n"));
        free(cr);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_query_parameters_are_sorted),
        cmocka_unit_test(test_utf8_path_is_percent_encoded),
        cmocka_unit_test(test_post_vanilla_and_query),
        cmocka_unit_test(test_headers_are_lowercased_sorted_and_trimmed),
        cmocka_unit_test(test_bad_requests_are_refused),
        cmocka_unit_test(test_s3_documented_examples),
        cmocka_unit_test(test_encoded_query_is_not_encoded_twice),
    };
    return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
