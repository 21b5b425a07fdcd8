/*
 * kbmock_sasl.c - SASL server side for kbmock: PLAIN (RFC 4616) and SCRAM-SHA-256/512
 * (RFC 5802 with RFC 7677's hash), written from the RFCs, checked the way Apache Kafka's
 * PlainSaslServer and ScramSaslServer check, and worded the way Kafka words its failures, so
 * that kbridge's tests see what an MSK broker would send. Test code only.
 */
#include "kbmock_sasl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/b64.h"
#include "iam_verify.h"

static const char *const mech_names[KBM_SASL_N_MECHS] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                                         "AWS_MSK_IAM", "OAUTHBEARER"};

const char *
kbm_sasl_mech_name(enum kbm_sasl_mech mech)
{
    return (unsigned)mech < KBM_SASL_N_MECHS ? mech_names[mech] : "?";
}

bool
kbm_sasl_mech_parse(const char *name, size_t len, enum kbm_sasl_mech *out)
{
    int i;

    for (i = 0; i < KBM_SASL_N_MECHS; i++) {
        if (strlen(mech_names[i]) == len && memcmp(mech_names[i], name, len) == 0) {
            *out = (enum kbm_sasl_mech)i;
            return true;
        }
    }
    return false;
}

static const EVP_MD *
scram_md(enum kbm_sasl_mech mech)
{
    return mech == KBM_SASL_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

static bool
scram_hmac(const EVP_MD *md, const uint8_t *key, size_t keylen, const void *data, size_t len,
           uint8_t *out)
{
    unsigned int outlen = 0;

    return HMAC(md, key, (int)keylen, data, len, out, &outlen) != NULL;
}

/* RFC 5802 section 3: SaltedPassword, then StoredKey and ServerKey, for one mechanism. */
static bool
scram_derive(enum kbm_sasl_mech mech, const char *password, struct kbm_sasl_scram_cred *cred)
{
    const EVP_MD *md = scram_md(mech);
    size_t dlen = (size_t)EVP_MD_get_size(md);
    uint8_t salted[KBM_SASL_DIGEST_MAX];
    uint8_t client_key[KBM_SASL_DIGEST_MAX];
    bool ok = false;

    if (RAND_bytes(cred->salt, sizeof(cred->salt)) != 1 ||
        PKCS5_PBKDF2_HMAC(password, (int)strlen(password), cred->salt, sizeof(cred->salt),
                          KBM_SASL_ITERATIONS, md, (int)dlen, salted) != 1) {
        goto fail;
    }
    if (!scram_hmac(md, salted, dlen, "Client Key", 10, client_key) ||
        !scram_hmac(md, salted, dlen, "Server Key", 10, cred->server_key) ||
        EVP_Digest(client_key, dlen, cred->stored_key, NULL, md, NULL) != 1) {
        goto fail;
    }
    ok = true;
fail:
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return ok;
}

bool
kbm_sasl_conf_add_user(struct kbm_sasl_conf *conf, const char *spec, char *err, size_t errlen)
{
    const char *colon = strchr(spec, ':');
    struct kbm_sasl_user *u;
    size_t nlen;
    int m;

    if (conf->n_users == KBM_SASL_MAX_USERS) {
        snprintf(err, errlen, "at most %d users", KBM_SASL_MAX_USERS);
        return false;
    }
    if (colon == NULL || colon == spec) {
        snprintf(err, errlen, "want NAME:PASSWORD");
        return false;
    }
    nlen = (size_t)(colon - spec);
    if (nlen >= KBM_SASL_NAME_MAX || strlen(colon + 1) >= KBM_SASL_PASS_MAX) {
        snprintf(err, errlen, "name or password too long");
        return false;
    }
    u = &conf->users[conf->n_users];
    memset(u, 0, sizeof(*u));
    memcpy(u->name, spec, nlen);
    snprintf(u->password, sizeof(u->password), "%s", colon + 1);
    for (m = KBM_SASL_SCRAM_SHA_256; m <= KBM_SASL_SCRAM_SHA_512; m++) {
        if (!scram_derive((enum kbm_sasl_mech)m, u->password, &u->scram[m])) {
            snprintf(err, errlen, "deriving SCRAM keys failed");
            return false;
        }
    }
    conf->n_users++;
    return true;
}

void
kbm_sasl_exchange_init(struct kbm_sasl_exchange *x, enum kbm_sasl_mech mech, bool reauth)
{
    memset(x, 0, sizeof(*x));
    x->mech = mech;
    x->reauth = reauth;
}

void
kbm_sasl_exchange_clear(struct kbm_sasl_exchange *x)
{
    OPENSSL_cleanse(x, sizeof(*x));
}

static const struct kbm_sasl_user *
find_user(const struct kbm_sasl_conf *conf, const char *name, size_t len)
{
    int i;

    for (i = 0; i < conf->n_users; i++) {
        if (strlen(conf->users[i].name) == len && memcmp(conf->users[i].name, name, len) == 0) {
            return &conf->users[i];
        }
    }
    return NULL;
}

/* --- PLAIN ------------------------------------------------------------------------------------ */

/* RFC 4616: [authzid] NUL authcid NUL passwd; Kafka's messages, verbatim. */
static enum kbm_sasl_result
plain_step(const struct kbm_sasl_conf *conf, struct kbm_sasl_exchange *x, const uint8_t *in,
           size_t inlen, char *err, size_t errlen, char *why, size_t whylen)
{
    const uint8_t *nul1 = memchr(in, '\0', inlen);
    const uint8_t *nul2 = nul1 ? memchr(nul1 + 1, '\0', inlen - (size_t)(nul1 + 1 - in)) : NULL;
    const char *user;
    const char *pass;
    size_t ulen;
    size_t plen;
    const struct kbm_sasl_user *u;

    if (nul2 == NULL || memchr(nul2 + 1, '\0', inlen - (size_t)(nul2 + 1 - in)) != NULL) {
        snprintf(err, errlen, "Invalid SASL/PLAIN response: expected 3 tokens");
        snprintf(why, whylen, "PLAIN token is not authzid NUL user NUL password");
        return KBM_SASL_FAILED;
    }
    user = (const char *)nul1 + 1;
    ulen = (size_t)(nul2 - nul1 - 1);
    pass = (const char *)nul2 + 1;
    plen = inlen - (size_t)(nul2 + 1 - in);
    if (ulen == 0 || plen == 0) {
        snprintf(err, errlen, "Authentication failed: username or password not specified");
        snprintf(why, whylen, "PLAIN with an empty user or password");
        return KBM_SASL_FAILED;
    }
    if (nul1 != in && ((size_t)(nul1 - in) != ulen || memcmp(in, user, ulen) != 0)) {
        snprintf(err, errlen,
                 "Authentication failed: Client requested an authorization id that is different "
                 "from username");
        snprintf(why, whylen, "PLAIN authzid differs from the user");
        return KBM_SASL_FAILED;
    }
    u = find_user(conf, user, ulen);
    if (u == NULL || strlen(u->password) != plen || CRYPTO_memcmp(u->password, pass, plen) != 0) {
        snprintf(err, errlen, "Authentication failed: Invalid username or password");
        snprintf(why, whylen, "PLAIN user '%.*s': %s", (int)(ulen < 64 ? ulen : 64), user,
                 u == NULL ? "unknown user" : "wrong password");
        return KBM_SASL_FAILED;
    }
    snprintf(x->principal, sizeof(x->principal), "%s", u->name);
    return KBM_SASL_OK;
}

/* --- SCRAM ------------------------------------------------------------------------------------ */

/*
 * RFC 5802 5.1 saslname: "=2C" is ',', "=3D" is '=', any other '=' is malformed. Writes the
 * decoded name (NUL-terminated) into out.
 */
static bool
scram_unescape(const char *in, size_t len, char *out, size_t outcap)
{
    size_t i;
    size_t o = 0;

    for (i = 0; i < len; i++) {
        char ch = in[i];

        if (ch == '=') {
            if (i + 2 >= len) {
                return false;
            }
            if (in[i + 1] == '2' && in[i + 2] == 'C') {
                ch = ',';
            } else if (in[i + 1] == '3' && in[i + 2] == 'D') {
                ch = '=';
            } else {
                return false;
            }
            i += 2;
        }
        if (ch == '\0' || o + 1 >= outcap) {
            return false;
        }
        out[o++] = ch;
    }
    out[o] = '\0';
    return o > 0;
}

/* A printable nonce: %x21-7E except ',' (RFC 5802 7). */
static bool
scram_nonce_ok(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',') {
            return false;
        }
    }
    return len > 0;
}

/* The value of attribute `a` at *p (form "a=value", up to ',' or end), advancing past it. */
static bool
scram_attr(const char **p, const char *end, char a, const char **val, size_t *vlen)
{
    const char *s = *p;
    const char *comma;

    if (end - s < 2 || s[0] != a || s[1] != '=') {
        return false;
    }
    s += 2;
    comma = memchr(s, ',', (size_t)(end - s));
    *val = s;
    *vlen = comma ? (size_t)(comma - s) : (size_t)(end - s);
    *p = comma ? comma + 1 : end;
    return true;
}

/*
 * client-first-message = gs2-header client-first-message-bare, where gs2-header is
 * ("n" / "y") "," ["a=" saslname] "," and the bare message "n=" saslname ",r=" nonce
 * ["," extensions]. Channel binding ("p=") and "m=" are refused, as RFC 5802 requires.
 */
static enum kbm_sasl_result
scram_first(const struct kbm_sasl_conf *conf, struct kbm_sasl_exchange *x, const char *msg,
            size_t len, uint8_t *out, size_t outcap, size_t *outlen, char *why, size_t whylen)
{
    const char *end = msg + len;
    const char *p = msg;
    const char *authzid = NULL;
    size_t authzid_len = 0;
    const char *bare;
    const char *v;
    size_t vlen;
    char name[KBM_SASL_NAME_MAX];
    char authz[KBM_SASL_NAME_MAX];
    uint8_t rnd[18];
    char snonce[KB_B64_ENCODED_MAX(18)];
    char salt64[KB_B64_ENCODED_MAX(KBM_SASL_SALT_LEN)];
    int n;

    if (len < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',') {
        snprintf(why, whylen, "client-first: gs2 header is not 'n,' or 'y,'");
        return KBM_SASL_FAILED;
    }
    p += 2;
    if (*p != ',') {
        if (!scram_attr(&p, end, 'a', &authzid, &authzid_len)) {
            snprintf(why, whylen, "client-first: bad authzid in gs2 header");
            return KBM_SASL_FAILED;
        }
    } else {
        p++;
    }
    bare = p;
    if ((size_t)(bare - msg) >= sizeof(x->gs2_header)) {
        snprintf(why, whylen, "client-first: gs2 header too long");
        return KBM_SASL_FAILED;
    }
    memcpy(x->gs2_header, msg, (size_t)(bare - msg));
    x->gs2_header[bare - msg] = '\0';
    if (!scram_attr(&p, end, 'n', &v, &vlen) || !scram_unescape(v, vlen, name, sizeof(name))) {
        snprintf(why, whylen, "client-first: no valid n=user");
        return KBM_SASL_FAILED;
    }
    if (!scram_attr(&p, end, 'r', &v, &vlen) || !scram_nonce_ok(v, vlen) ||
        vlen >= sizeof(x->client_nonce)) {
        snprintf(why, whylen, "client-first: no valid r=nonce");
        return KBM_SASL_FAILED;
    }
    memcpy(x->client_nonce, v, vlen);
    x->client_nonce[vlen] = '\0';
    /* the rest, if any, are extensions (Kafka's tokenauth=true): accepted, not interpreted */
    if (authzid != NULL &&
        (!scram_unescape(authzid, authzid_len, authz, sizeof(authz)) || strcmp(authz, name) != 0)) {
        snprintf(why, whylen, "client-first: authzid differs from the user");
        return KBM_SASL_FAILED;
    }
    x->user = find_user(conf, name, strlen(name));
    if (x->user == NULL) {
        snprintf(why, whylen, "client-first: unknown user '%.64s'", name);
        return KBM_SASL_FAILED;
    }
    if ((size_t)(end - bare) >= sizeof(x->client_first_bare)) {
        snprintf(why, whylen, "client-first: too long");
        return KBM_SASL_FAILED;
    }
    memcpy(x->client_first_bare, bare, (size_t)(end - bare));
    x->client_first_bare[end - bare] = '\0';
    if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
        b64_encode(rnd, sizeof(rnd), true, snonce, sizeof(snonce)) == 0 ||
        b64_encode(x->user->scram[x->mech].salt, KBM_SASL_SALT_LEN, false, salt64,
                   sizeof(salt64)) == 0) {
        snprintf(why, whylen, "random bytes or base64 failed");
        return KBM_SASL_FAILED;
    }
    snprintf(x->combined_nonce, sizeof(x->combined_nonce), "%s%s", x->client_nonce, snonce);
    n = snprintf(x->server_first, sizeof(x->server_first), "r=%s,s=%s,i=%d", x->combined_nonce,
                 salt64, KBM_SASL_ITERATIONS);
    if (n < 0 || (size_t)n >= sizeof(x->server_first) || (size_t)n > outcap) {
        snprintf(why, whylen, "server-first does not fit");
        return KBM_SASL_FAILED;
    }
    memcpy(out, x->server_first, (size_t)n);
    *outlen = (size_t)n;
    x->state = KBM_SASL_STEP_FINAL;
    return KBM_SASL_CONTINUE;
}

/*
 * client-final-message = "c=" base64(gs2-header) ",r=" nonce ["," extensions] ",p=" proof.
 * The nonce must be exactly the combined nonce of server-first (RFC 5802 5.1), with one
 * exception, see below. The proof is checked as RFC 5802 3 says: ClientKey = proof XOR
 * HMAC(StoredKey, AuthMessage), and H(ClientKey) must be StoredKey.
 */
static enum kbm_sasl_result
scram_final(const struct kbm_sasl_conf *conf, struct kbm_sasl_exchange *x, const char *msg,
            size_t len, uint8_t *out, size_t outcap, size_t *outlen, char *why, size_t whylen)
{
    const EVP_MD *md = scram_md(x->mech);
    size_t dlen = (size_t)EVP_MD_get_size(md);
    const struct kbm_sasl_scram_cred *cred = &x->user->scram[x->mech];
    const char *end = msg + len;
    const char *p = msg;
    const char *v;
    size_t vlen;
    const char *proof_at;
    char cbind[KB_B64_ENCODED_MAX(sizeof(x->gs2_header))];
    char auth_msg[3 * KBM_SASL_TOKEN_MAX + 3];
    uint8_t proof[KBM_SASL_DIGEST_MAX + 4];
    size_t proof_len = 0;
    uint8_t sig[KBM_SASL_DIGEST_MAX];
    uint8_t client_key[KBM_SASL_DIGEST_MAX];
    uint8_t stored[KBM_SASL_DIGEST_MAX];
    size_t clen = strlen(x->client_nonce);
    size_t i;
    int n;
    enum kbm_sasl_result res = KBM_SASL_FAILED;

    if (b64_encode((const uint8_t *)x->gs2_header, strlen(x->gs2_header), false, cbind,
                   sizeof(cbind)) == 0 ||
        !scram_attr(&p, end, 'c', &v, &vlen) || vlen != strlen(cbind) ||
        memcmp(v, cbind, vlen) != 0) {
        snprintf(why, whylen, "client-final: c= is not base64 of the gs2 header '%s'",
                 x->gs2_header);
        goto fail;
    }
    if (!scram_attr(&p, end, 'r', &v, &vlen)) {
        snprintf(why, whylen, "client-final: no r=nonce");
        goto fail;
    }
    if (vlen == strlen(x->combined_nonce) && memcmp(v, x->combined_nonce, vlen) == 0) {
        x->nonce_quirk = false;
    } else if (!conf->strict_nonce && vlen == clen + strlen(x->combined_nonce) &&
               memcmp(v, x->client_nonce, clen) == 0 &&
               memcmp(v + clen, x->combined_nonce, vlen - clen) == 0) {
        /*
         * librdkafka before 2.6.1 (Debian's 2.0.2 included) sends r= as its own nonce followed
         * by the combined nonce, i.e. the client nonce twice. Apache Kafka 3.8.1+ tolerates
         * exactly this form, so MSK does and so does kbmock; it is counted (nonce_quirk) so a
         * test can prove that a client it cares about (kbridge's own) does not rely on it.
         */
        x->nonce_quirk = true;
    } else {
        snprintf(why, whylen, "client-final: r= is not the combined nonce");
        goto fail;
    }
    /* everything up to ",p=" is client-final-message-without-proof; p= must come last */
    proof_at = NULL;
    while (p < end) {
        if (end - p >= 2 && p[0] == 'p' && p[1] == '=') {
            proof_at = p;
            break;
        }
        v = memchr(p, ',', (size_t)(end - p));
        if (v == NULL) {
            break;
        }
        p = v + 1;
    }
    if (proof_at == NULL || memchr(proof_at, ',', (size_t)(end - proof_at)) != NULL) {
        snprintf(why, whylen, "client-final: p=proof missing or not last");
        goto fail;
    }
    if (!b64_decode(proof_at + 2, (size_t)(end - proof_at - 2), proof, sizeof(proof), &proof_len) ||
        proof_len != dlen) {
        snprintf(why, whylen, "client-final: proof is not base64 of %zu bytes", dlen);
        goto fail;
    }
    n = snprintf(auth_msg, sizeof(auth_msg), "%s,%s,%.*s", x->client_first_bare, x->server_first,
                 (int)(proof_at - 1 - msg), msg);
    if (n < 0 || (size_t)n >= sizeof(auth_msg)) {
        snprintf(why, whylen, "client-final: too long");
        goto fail;
    }
    if (!scram_hmac(md, cred->stored_key, dlen, auth_msg, (size_t)n, sig)) {
        snprintf(why, whylen, "HMAC failed");
        goto fail;
    }
    for (i = 0; i < dlen; i++) {
        client_key[i] = proof[i] ^ sig[i];
    }
    if (EVP_Digest(client_key, dlen, stored, NULL, md, NULL) != 1 ||
        CRYPTO_memcmp(stored, cred->stored_key, dlen) != 0) {
        snprintf(why, whylen, "client-final: wrong proof for user '%.64s' (wrong password)",
                 x->user->name);
        goto fail;
    }
    if (!scram_hmac(md, cred->server_key, dlen, auth_msg, (size_t)n, sig) || outcap < 2 ||
        b64_encode(sig, dlen, false, (char *)out + 2, outcap - 2) == 0) {
        snprintf(why, whylen, "server-final does not fit");
        goto fail;
    }
    out[0] = 'v';
    out[1] = '=';
    *outlen = 2 + strlen((const char *)out + 2);
    snprintf(x->principal, sizeof(x->principal), "%s", x->user->name);
    res = KBM_SASL_OK;
fail:
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(sig, sizeof(sig));
    return res;
}

/* --- AWS_MSK_IAM and OAUTHBEARER -------------------------------------------------------------- */

#define IAM_MAX_CREDS 256 /* lines of --iam-credentials */

/* One line of --iam-credentials (strings point into the line buffer). */
struct iam_line {
    struct iam_verify_cred cred; /* for iam_verify */
    long long expires;           /* epoch seconds; 0: does not expire */
};

/* Reads up to max lines of path into lines (buffer: the file's bytes, malloc'd). */
static int
iam_load(const char *path, struct iam_line *lines, int max, char **buffer)
{
    FILE *f = fopen(path, "r");
    long size;
    char *p, *save = NULL;
    int n = 0;

    *buffer = NULL;
    if (!f) {
        return 0;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(*buffer = calloc(1, (size_t)size + 1)) ||
        fread(*buffer, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    for (p = strtok_r(*buffer, "\n", &save); p && n < max; p = strtok_r(NULL, "\n", &save)) {
        char *fs = NULL, *key = strtok_r(p, " \t", &fs), *secret = strtok_r(NULL, " \t", &fs);
        char *token = strtok_r(NULL, " \t", &fs), *exp = strtok_r(NULL, " \t", &fs);
        char *principal = strtok_r(NULL, " \t", &fs);

        if (!key || !secret || *key == '#') {
            continue;
        }
        lines[n].cred.access_key_id = key;
        lines[n].cred.secret = secret;
        lines[n].cred.session_token = token && strcmp(token, "-") != 0 ? token : NULL;
        lines[n].cred.principal = principal;
        lines[n].expires = exp ? atoll(exp) : 0;
        n++;
    }
    return n;
}

/* An MSK-like request id: lowercase hex groups. */
static void
iam_request_id(char *out, size_t outlen)
{
    uint8_t r[8] = {0};
    size_t i;

    (void)RAND_bytes(r, sizeof(r));
    out[0] = '\0';
    for (i = 0; i < sizeof(r) && (i + 1) * 2 < outlen; i++) {
        snprintf(out + 2 * i, outlen - 2 * i, "%02x", r[i]);
    }
}

/*
 * Verifies one IAM client message. The key that signed is found by verifying with each known
 * credential alone (iam_verify names no key); when none fits, the reason is the one verifying
 * against all of them gives. Expired credentials are refused as MSK refuses an expired token.
 */
static enum kbm_sasl_result
iam_step(const struct kbm_sasl_conf *conf, struct kbm_sasl_exchange *x, const uint8_t *in,
         size_t inlen, uint8_t *out, size_t outcap, size_t *outlen, char *err, size_t errlen,
         char *why, size_t whylen)
{
    static struct iam_line lines[IAM_MAX_CREDS]; /* kbmock is single-threaded */
    struct iam_verify_cred all[IAM_MAX_CREDS];
    struct iam_verify_policy pol = {0};
    char principal[IAM_VERIFY_PRINCIPAL_MAX], reason[IAM_VERIFY_REASON_MAX], rid[32];
    char *buffer = NULL;
    time_t expires_at = 0, now = time(NULL);
    int n, i, found = -1;
    bool ok = false;

    n = conf->iam_file ? iam_load(conf->iam_file, lines, IAM_MAX_CREDS, &buffer) : 0;
    pol.host = conf->iam_host ? conf->iam_host : "127.0.0.1";
    pol.region = conf->iam_region ? conf->iam_region : "eu-west-1";
    pol.now = now;
    for (i = 0; i < n && found < 0; i++) {
        pol.creds = &lines[i].cred;
        pol.ncreds = 1;
        ok = x->mech == KBM_SASL_AWS_MSK_IAM
                 ? iam_verify_msk_iam(&pol, in, inlen, principal, sizeof(principal), &expires_at,
                                      reason, sizeof(reason))
                 : iam_verify_oauthbearer(&pol, in, inlen, principal, sizeof(principal),
                                          &expires_at, reason, sizeof(reason));
        found = ok ? i : -1;
    }
    if (found < 0) {
        for (i = 0; i < n; i++) {
            all[i] = lines[i].cred;
        }
        pol.creds = all;
        pol.ncreds = (size_t)n;
        (void)(x->mech == KBM_SASL_AWS_MSK_IAM
                   ? iam_verify_msk_iam(&pol, in, inlen, principal, sizeof(principal), &expires_at,
                                        reason, sizeof(reason))
                   : iam_verify_oauthbearer(&pol, in, inlen, principal, sizeof(principal),
                                            &expires_at, reason, sizeof(reason)));
        if (n == 0) {
            snprintf(reason, sizeof(reason), "no known credentials");
        }
    } else {
        snprintf(x->iam_key_id, sizeof(x->iam_key_id), "%s", lines[found].cred.access_key_id);
        if (lines[found].expires && lines[found].expires <= (long long)now) {
            snprintf(reason, sizeof(reason),
                     "the security token included in the request is "
                     "expired");
            found = -1;
        } else if (lines[found].expires && lines[found].expires < (long long)expires_at) {
            expires_at = (time_t)lines[found].expires; /* MSK caps at the credentials' expiry */
        }
    }
    free(buffer);
    iam_request_id(rid, sizeof(rid));
    if (found < 0) {
        snprintf(why, whylen, "IAM: %s", reason);
        snprintf(err, errlen, "[%s]: Access denied: %s", rid, reason);
        if (x->mech == KBM_SASL_OAUTHBEARER) {
            /* RFC 7628 3.2.2: an error JSON first; the client answers %x01, then we fail */
            static const char status[] = "{\"status\":\"invalid_token\"}";

            snprintf(x->iam_error, sizeof(x->iam_error), "%s", err);
            err[0] = '\0';
            memcpy(out, status, sizeof(status) - 1);
            *outlen = sizeof(status) - 1;
            x->state = KBM_SASL_STEP_FINAL;
            return KBM_SASL_CONTINUE;
        }
        return KBM_SASL_FAILED;
    }
    snprintf(x->principal, sizeof(x->principal), "%.*s", KBM_SASL_NAME_MAX - 1, principal);
    x->iam_session_ms = expires_at > now ? (int64_t)(expires_at - now) * 1000 : 1;
    if (x->mech == KBM_SASL_AWS_MSK_IAM) {
        *outlen = iam_verify_server_message((char *)out, outcap, rid);
        if (*outlen == 0) {
            snprintf(why, whylen, "server message does not fit");
            return KBM_SASL_FAILED;
        }
    }
    return KBM_SASL_OK;
}

/* OAUTHBEARER after the error JSON: the client's %x01, then the refusal. */
static enum kbm_sasl_result
oauth_final(struct kbm_sasl_exchange *x, const uint8_t *in, size_t inlen, char *err, size_t errlen,
            char *why, size_t whylen)
{
    snprintf(err, errlen, "%s", x->iam_error);
    if (inlen != 1 || in[0] != 0x01) {
        snprintf(why, whylen, "OAUTHBEARER: the client did not answer the error with %%x01");
    } else {
        snprintf(why, whylen, "IAM: %s", x->iam_error);
    }
    return KBM_SASL_FAILED;
}

int64_t
kbm_sasl_session_ms(const struct kbm_sasl_conf *conf, const struct kbm_sasl_exchange *x)
{
    if (KBM_SASL_IS_IAM(x->mech)) {
        return conf->session_ms > 0 && conf->session_ms < x->iam_session_ms ? conf->session_ms
                                                                            : x->iam_session_ms;
    }
    return conf->session_ms;
}

enum kbm_sasl_result
kbm_sasl_exchange_step(const struct kbm_sasl_conf *conf, struct kbm_sasl_exchange *x,
                       const uint8_t *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen,
                       char *err, size_t errlen, char *why, size_t whylen)
{
    enum kbm_sasl_result res;

    *outlen = 0;
    err[0] = '\0';
    why[0] = '\0';
    if (x->state == KBM_SASL_STEP_DONE) {
        snprintf(err, errlen, "Unexpected SASL token after the exchange ended");
        snprintf(why, whylen, "token after the exchange ended");
        return KBM_SASL_FAILED;
    }
    if (inlen > KBM_SASL_TOKEN_MAX) {
        snprintf(why, whylen, "token of %zu bytes, more than %d", inlen, KBM_SASL_TOKEN_MAX);
        res = KBM_SASL_FAILED;
    } else if (KBM_SASL_IS_IAM(x->mech) && x->state == KBM_SASL_STEP_FIRST) {
        res = iam_step(conf, x, in, inlen, out, outcap, outlen, err, errlen, why, whylen);
    } else if (x->mech == KBM_SASL_OAUTHBEARER) {
        res = oauth_final(x, in, inlen, err, errlen, why, whylen);
    } else if (x->mech == KBM_SASL_PLAIN) {
        res = plain_step(conf, x, in, inlen, err, errlen, why, whylen);
    } else if (x->state == KBM_SASL_STEP_FIRST) {
        res = scram_first(conf, x, (const char *)in, inlen, out, outcap, outlen, why, whylen);
    } else {
        res = scram_final(conf, x, (const char *)in, inlen, out, outcap, outlen, why, whylen);
    }
    if (res == KBM_SASL_FAILED && err[0] == '\0') {
        /* SaslServerAuthenticator's words for every SaslException (SCRAM's failures) */
        snprintf(err, errlen,
                 "Authentication failed during %s due to invalid credentials with SASL "
                 "mechanism %s",
                 x->reauth ? "re-authentication" : "authentication", kbm_sasl_mech_name(x->mech));
    }
    if (res != KBM_SASL_CONTINUE) {
        x->state = KBM_SASL_STEP_DONE;
    }
    return res;
}
