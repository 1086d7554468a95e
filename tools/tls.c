/* tools/tls.c - a `cb up --tls` stack's CA and server certificate (see
 * tls.h), with OpenSSL's X.509 API. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAYS 825

void cb_tls_path(const char *dir, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/tls/%s", dir, name);
}

void cb_tls_trust_stack_ca(const char *dir)
{
    char path[4200];
    cb_tls_path(dir, "ca.pem", path, sizeof path);
    if (access(path, R_OK) == 0) {
        setenv("CB_BROKER_CA_FILE", path, 0);
        setenv("CB_API_CA_FILE", path, 0);
    }
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    if (!(ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)))
        return -1;
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return 0;
}

/* A certificate for `key` named cn, signed by (issuer, ikey), or
 * self-signed when issuer is NULL (the CA). */
static X509 *certificate(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, long serial)
{
    X509 *c = X509_new();
    X509_NAME *name;
    int ok;
    if (!c)
        return NULL;
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), (long)DAYS * 24 * 3600);
    X509_set_pubkey(c, key);
    name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"cbcore dev stack",
                               -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
    if (!issuer)
        ok = add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
             add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
             add_ext(c, c, NID_subject_key_identifier, "hash") == 0;
    else
        ok = add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
             add_ext(c, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment") == 0 &&
             add_ext(c, issuer, NID_ext_key_usage, "serverAuth") == 0 &&
             add_ext(c, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") == 0 &&
             add_ext(c, issuer, NID_authority_key_identifier, "keyid") == 0;
    if (!ok || !X509_sign(c, ikey ? ikey : key, EVP_sha256())) {
        X509_free(c);
        return NULL;
    }
    return c;
}

/* Write a PEM file with `mode`: a key when key != NULL, else cert. */
static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int ok;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    return fclose(f) == 0 && ok ? 0 : -1;
}

int cb_tls_make_dev(const char *dir, char *err, size_t errlen)
{
    char d[700], ca_pem[700], ca_key[700], srv_pem[700], srv_key[700];
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *srv = NULL;
    int rc = -1;
    snprintf(d, sizeof d, "%s/tls", dir);
    cb_tls_path(dir, "ca.pem", ca_pem, sizeof ca_pem);
    cb_tls_path(dir, "ca.key", ca_key, sizeof ca_key);
    cb_tls_path(dir, "server.pem", srv_pem, sizeof srv_pem);
    cb_tls_path(dir, "server.key", srv_key, sizeof srv_key);
    if (access(ca_pem, R_OK) == 0 && access(srv_pem, R_OK) == 0 && access(srv_key, R_OK) == 0)
        return 0;
    if (mkdir(d, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", d, strerror(errno));
        return -1;
    }
    if (!(cakey = EVP_EC_gen("P-256")) || !(key = EVP_EC_gen("P-256")) ||
        !(ca = certificate(cakey, "cbcore dev CA", NULL, NULL, 1)) ||
        !(srv = certificate(key, "localhost", ca, cakey, 2))) {
        snprintf(err, errlen, "OpenSSL: %s", ERR_error_string(ERR_get_error(), NULL));
        goto out;
    }
    if (write_pem(ca_key, cakey, NULL, 0600) != 0 || write_pem(srv_key, key, NULL, 0600) != 0 ||
        write_pem(srv_pem, NULL, srv, 0644) != 0 || write_pem(ca_pem, NULL, ca, 0644) != 0) {
        snprintf(err, errlen, "cannot write the certificates in %s: %s", d, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    return rc;
}
