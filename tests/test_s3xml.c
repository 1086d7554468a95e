/* tests/test_s3xml.c - the S3 answers cbcore reads (common/cb_s3xml.c): a
 * ListObjectsV2 page as AWS documents it, escaped keys, the page's own
 * fields before or after the entries, errors, and damaged documents
 * (refused, never a crash: also tests/fuzz/fuzz_s3xml.c). */
#include "cb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_s3xml.h"

static const char page[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
    "  <Name>bucket</Name><Prefix/><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>\n"
    "  <IsTruncated>true</IsTruncated>\n"
    "  "
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\n"
    "  <Contents><Key>my-image.jpg</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
    "    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>\n"
    "    <StorageClass>STANDARD</StorageClass></Contents>\n"
    "  <Contents><Key>a &amp; b &lt;c&gt; &#252;&#x20AC;</Key><Size>0</Size></Contents>\n"
    "</ListBucketResult>";

static void test_a_documented_page(void **state)
{
    cb_s3_list l;
    char err[200];
    (void)state;
    assert_int_equal(cb_s3xml_list(page, strlen(page), &l, err, sizeof err), CB_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].key, "my-image.jpg");
    assert_true(l.v[0].size == 434234);
    assert_string_equal(l.v[0].etag, "fba9dede5f27731c9771645a39863328");
    assert_string_equal(l.v[1].key, "a & b <c> \xc3\xbc\xe2\x82\xac");
    assert_true(l.v[1].size == 0);
    assert_string_equal(l.v[1].etag, "");
    assert_true(l.truncated);
    assert_string_equal(l.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    cb_s3_list_cleanup(&l);
    assert_int_equal(l.n, 0);
}

static void test_fields_after_the_entries_and_the_last_page(void **state)
{
    static const char last[] = "<ListBucketResult><Contents><Key>k</Key><Size>7</Size></Contents>"
                               "<IsTruncated>false</IsTruncated></ListBucketResult>";
    static const char after[] = "<ListBucketResult><Contents><Key>k</Key><Size>7</Size></Contents>"
                                "<IsTruncated>true</IsTruncated>"
                                "<NextContinuationToken>t2</NextContinuationToken>"
                                "</ListBucketResult>";
    static const char empty[] = "<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>";
    cb_s3_list l;
    char err[200];
    (void)state;
    assert_int_equal(cb_s3xml_list(last, strlen(last), &l, err, sizeof err), CB_OK);
    assert_int_equal(l.n, 1);
    assert_false(l.truncated);
    assert_null(l.next_token);
    cb_s3_list_cleanup(&l);
    assert_int_equal(cb_s3xml_list(after, strlen(after), &l, err, sizeof err), CB_OK);
    assert_true(l.truncated);
    assert_string_equal(l.next_token, "t2");
    cb_s3_list_cleanup(&l);
    assert_int_equal(cb_s3xml_list(empty, strlen(empty), &l, err, sizeof err), CB_OK);
    assert_int_equal(l.n, 0);
    cb_s3_list_cleanup(&l);
}

static void test_damaged_pages_are_refused(void **state)
{
    static const char *bad[] = {
        "",
        "<Error><Code>x</Code></Error>",
        "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size>"
        "</Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>1</Size>",
    };
    cb_s3_list l;
    char err[200];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(cb_s3xml_list(bad[i], strlen(bad[i]), &l, err, sizeof err), CB_EPROTO);
        assert_true(err[0] != '\0');
        assert_int_equal(l.n, 0);
    }
}

static void test_errors(void **state)
{
    static const char sig[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
        "<Message>The request signature we calculated does not match</Message>"
        "<StringToSign>AWS4-HMAC-SHA256&#10;x</StringToSign></Error>";
    char code[64], msg[16];
    (void)state;
    assert_int_equal(cb_s3xml_error(sig, strlen(sig), code, sizeof code, msg, sizeof msg), 0);
    assert_string_equal(code, "SignatureDoesNotMatch");
    assert_string_equal(msg, "The request sig"); /* cut to fit */
    assert_int_equal(cb_s3xml_error(page, strlen(page), code, sizeof code, msg, sizeof msg), -1);
    assert_string_equal(code, "");
}

/* Random cuts and byte flips of a page: refused or parsed, never a crash
 * or a leak (run under make asan). */
static void test_mutations_never_crash(void **state)
{
    char buf[sizeof page], err[200], code[64], msg[64];
    unsigned seed = 12345;
    (void)state;
    for (int i = 0; i < 20000; i++) {
        size_t n = sizeof page - 1;
        cb_s3_list l;
        memcpy(buf, page, n);
        seed = seed * 1103515245u + 12345u;
        n = (seed >> 8) % (n + 1);
        for (int k = 0; k < 3 && n > 0; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % n] = "<>/&;#x\"a0"[(seed >> 4) % 10];
        }
        if (cb_s3xml_list(buf, n, &l, err, sizeof err) == CB_OK)
            cb_s3_list_cleanup(&l);
        (void)cb_s3xml_error(buf, n, code, sizeof code, msg, sizeof msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_documented_page),
        cmocka_unit_test(test_fields_after_the_entries_and_the_last_page),
        cmocka_unit_test(test_damaged_pages_are_refused),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_mutations_never_crash),
    };
    return cmocka_run_group_tests_name("s3xml", tests, NULL, NULL);
}
