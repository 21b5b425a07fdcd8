/*
 * scram.c - SCRAM client (see scram.h). RFC 5802 section 3:
 *   SaltedPassword  = Hi(password, salt, i)            (PBKDF2-HMAC, one block)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey)
 *   AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
 *   ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *   ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)
 */
#include "auth/scram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/b64.h"

#define SCRAM_RANDOM_BYTES 18 /* 24 base64 characters, no padding */
#define SCRAM_WITHOUT_PROOF "c=biws,r="

static const EVP_MD *
scram_md(enum scram_hash h)
{
    return h == SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

static const char *
scram_name(enum scram_hash h)
{
    return h == SCRAM_SHA_512 ? "SCRAM-SHA-512" : "SCRAM-SHA-256";
}

/* A nonce is printable ASCII except ',' (RFC 5802 "printable"). */
static bool
scram_nonce_ok(const char *n, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (n[i] < 0x21 || n[i] > 0x7e || n[i] == ',') {
            return false;
        }
    }
    return len > 0;
}

/* Copies server text into a NUL-terminated string, refusing NUL and non-ASCII bytes. */
static char *
scram_text(const uint8_t *in, size_t len, char *err, size_t errlen, const char *what)
{
    char *t;
    size_t i;

    if (len == 0 || len > SCRAM_MSG_MAX) {
        snprintf(err, errlen, "SCRAM %s is %zu bytes (expected 1-%d)", what, len, SCRAM_MSG_MAX);
        return NULL;
    }
    for (i = 0; i < len; i++) {
        if (in[i] < 0x20 || in[i] > 0x7e) {
            snprintf(err, errlen, "SCRAM %s has a non-printable byte at offset %zu", what, i);
            return NULL;
        }
    }
    if (!(t = malloc(len + 1))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(t, in, len);
    t[len] = '\0';
    return t;
}

/* Copies an e= value (up to the next ',') into err as the server's own message. */
static void
scram_server_error(const char *e, char *err, size_t errlen)
{
    size_t n = strcspn(e, ",");

    snprintf(err, errlen, "the server refused the SCRAM exchange: %.*s", (int)n, e);
}

bool
scram_client_first(struct scram *s, enum scram_hash hash, const char *user, const char *password,
                   const char *nonce, struct auth_buf *out, char *err, size_t errlen)
{
    uint8_t rnd[SCRAM_RANDOM_BYTES];
    size_t ulen = strlen(user), i, o;
    char *bare = NULL;

    s->hash = hash;
    s->hash_len = (size_t)EVP_MD_get_size(scram_md(hash));
    if (ulen == 0) {
        snprintf(err, errlen, "%s needs a user name", scram_name(hash));
        return false;
    }
    if (nonce) {
        if (strlen(nonce) > SCRAM_NONCE_MAX || !scram_nonce_ok(nonce, strlen(nonce))) {
            snprintf(err, errlen, "bad SCRAM client nonce");
            return false;
        }
        strcpy(s->nonce, nonce);
    } else {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            snprintf(err, errlen, "RAND_bytes failed making a SCRAM nonce");
            return false;
        }
        b64_encode(rnd, sizeof(rnd), false, s->nonce, sizeof(s->nonce));
    }
    /* "n=" saslname ",r=" nonce; each ',' or '=' in the name becomes 3 characters */
    if (!(bare = malloc(2 + ulen * 3 + 3 + strlen(s->nonce) + 1)) ||
        !(s->password = strdup(password))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    o = 0;
    bare[o++] = 'n';
    bare[o++] = '=';
    for (i = 0; i < ulen; i++) {
        if (user[i] == ',' || user[i] == '=') {
            memcpy(bare + o, user[i] == ',' ? "=2C" : "=3D", 3);
            o += 3;
        } else {
            bare[o++] = user[i];
        }
    }
    o += (size_t)sprintf(bare + o, ",r=%s", s->nonce);
    auth_buf_free(out);
    if (!(out->data = malloc(3 + o))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(out->data, "n,,", 3); /* gs2 header: no channel binding, no authzid */
    memcpy(out->data + 3, bare, o);
    out->len = 3 + o;
    s->client_first_bare = bare;
    s->state = SCRAM_SENT_FIRST;
    return true;
fail:
    free(bare);
    if (s->password) {
        OPENSSL_cleanse(s->password, strlen(s->password));
        free(s->password);
        s->password = NULL;
    }
    return false;
}

/* Splits server-first into its r, s and i values (pointers into t, which is modified). */
static bool
scram_parse_first(struct scram *s, char *t, char **nonce, char **salt, long *iters, char *err,
                  size_t errlen)
{
    char *p = t, *end;
    size_t n;

    if (strncmp(p, "e=", 2) == 0) {
        scram_server_error(p + 2, err, errlen);
        return false;
    }
    if (strncmp(p, "m=", 2) == 0) {
        snprintf(err, errlen, "SCRAM server-first asks for a mandatory extension (m=)");
        return false;
    }
    if (strncmp(p, "r=", 2) != 0) {
        snprintf(err, errlen, "SCRAM server-first does not start with r=");
        return false;
    }
    *nonce = p += 2;
    n = strcspn(p, ",");
    if (!scram_nonce_ok(p, n)) {
        snprintf(err, errlen, "SCRAM server-first has an empty or non-printable nonce");
        return false;
    }
    if (n <= strlen(s->nonce) || strncmp(p, s->nonce, strlen(s->nonce)) != 0) {
        snprintf(err, errlen,
                 "SCRAM server nonce does not extend ours (a replayed or foreign exchange)");
        return false;
    }
    p += n;
    if (strncmp(p, ",s=", 3) != 0) {
        snprintf(err, errlen, "SCRAM server-first has no s= (salt) after the nonce");
        return false;
    }
    *p = '\0';
    *salt = p += 3;
    p += strcspn(p, ",");
    if (strncmp(p, ",i=", 3) != 0) {
        snprintf(err, errlen, "SCRAM server-first has no i= (iteration count) after the salt");
        return false;
    }
    *p = '\0';
    p += 3;
    n = strspn(p, "0123456789");
    if (n == 0 || n > 9 || (p[n] != '\0' && p[n] != ',')) {
        snprintf(err, errlen, "SCRAM server-first has a malformed iteration count");
        return false;
    }
    *iters = strtol(p, &end, 10);
    if (*iters < SCRAM_MIN_ITERATIONS || *iters > SCRAM_MAX_ITERATIONS) {
        snprintf(err, errlen,
                 "SCRAM iteration count %ld is outside %d-%d (Kafka's limits; a lower count "
                 "weakens the stored credential)",
                 *iters, SCRAM_MIN_ITERATIONS, SCRAM_MAX_ITERATIONS);
        return false;
    }
    return true; /* extensions after i are allowed and ignored (RFC 5802 section 7) */
}

bool
scram_client_final(struct scram *s, const uint8_t *server_first, size_t len, struct auth_buf *out,
                   char *err, size_t errlen)
{
    const EVP_MD *md = scram_md(s->hash);
    uint8_t salted[SCRAM_HASH_MAX], ckey[SCRAM_HASH_MAX], stored[SCRAM_HASH_MAX];
    uint8_t csig[SCRAM_HASH_MAX], skey[SCRAM_HASH_MAX], salt[SCRAM_MSG_MAX];
    char proof_b64[KB_B64_ENCODED_MAX(SCRAM_HASH_MAX)];
    char *text = NULL, *parsed = NULL, *nonce, *salt_b64, *am = NULL, *without = NULL;
    size_t salt_len = 0, am_len, wlen, i;
    unsigned int hl = 0;
    long iters = 0;
    bool ok = false;

    if (s->state != SCRAM_SENT_FIRST || !s->password) {
        snprintf(err, errlen, "SCRAM: server-first out of order");
        goto fail;
    }
    if (!(text = scram_text(server_first, len, err, errlen, "server-first")) ||
        !(parsed = strdup(text))) {
        if (text) {
            snprintf(err, errlen, "out of memory");
        }
        goto fail;
    }
    if (!scram_parse_first(s, parsed, &nonce, &salt_b64, &iters, err, errlen)) {
        goto fail;
    }
    if (!b64_decode(salt_b64, strlen(salt_b64), salt, sizeof(salt), &salt_len) || salt_len == 0) {
        snprintf(err, errlen, "SCRAM server-first has a salt that is not base64");
        goto fail;
    }
    wlen = strlen(SCRAM_WITHOUT_PROOF) + strlen(nonce);
    am_len = strlen(s->client_first_bare) + 1 + len + 1 + wlen;
    if (!(without = malloc(wlen + 1)) || !(am = malloc(am_len + 1))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(without, wlen + 1, "%s%s", SCRAM_WITHOUT_PROOF, nonce);
    snprintf(am, am_len + 1, "%s,%s,%s", s->client_first_bare, text, without);
    if (PKCS5_PBKDF2_HMAC(s->password, (int)strlen(s->password), salt, (int)salt_len, (int)iters,
                          md, (int)s->hash_len, salted) != 1 ||
        !HMAC(md, salted, (int)s->hash_len, (const uint8_t *)"Client Key", 10, ckey, &hl) ||
        EVP_Digest(ckey, s->hash_len, stored, NULL, md, NULL) != 1 ||
        !HMAC(md, stored, (int)s->hash_len, (const uint8_t *)am, am_len, csig, &hl) ||
        !HMAC(md, salted, (int)s->hash_len, (const uint8_t *)"Server Key", 10, skey, &hl) ||
        !HMAC(md, skey, (int)s->hash_len, (const uint8_t *)am, am_len, s->server_signature, &hl)) {
        snprintf(err, errlen, "SCRAM key derivation failed in libcrypto");
        goto fail;
    }
    for (i = 0; i < s->hash_len; i++) {
        csig[i] ^= ckey[i]; /* csig now holds ClientProof */
    }
    b64_encode(csig, s->hash_len, false, proof_b64, sizeof(proof_b64));
    auth_buf_free(out);
    if (!(out->data = malloc(wlen + 3 + strlen(proof_b64) + 1))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    out->len = (size_t)sprintf((char *)out->data, "%s,p=%s", without, proof_b64);
    s->state = SCRAM_SENT_FINAL;
    ok = true;
fail:
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(ckey, sizeof(ckey));
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(csig, sizeof(csig));
    OPENSSL_cleanse(skey, sizeof(skey));
    OPENSSL_cleanse(proof_b64, sizeof(proof_b64));
    if (s->password) {
        OPENSSL_cleanse(s->password, strlen(s->password));
        free(s->password);
        s->password = NULL;
    }
    free(text);
    free(parsed);
    free(without);
    if (am) {
        OPENSSL_cleanse(am, am_len);
        free(am);
    }
    return ok;
}

bool
scram_server_final(struct scram *s, const uint8_t *in, size_t len, char *err, size_t errlen)
{
    uint8_t sig[SCRAM_MSG_MAX];
    size_t sig_len = 0, n;
    char *text;
    bool ok = false;

    if (s->state != SCRAM_SENT_FINAL) {
        snprintf(err, errlen, "SCRAM: server-final out of order");
        return false;
    }
    if (!(text = scram_text(in, len, err, errlen, "server-final"))) {
        return false;
    }
    if (strncmp(text, "e=", 2) == 0) {
        scram_server_error(text + 2, err, errlen);
        goto fail;
    }
    if (strncmp(text, "v=", 2) != 0) {
        snprintf(err, errlen, "SCRAM server-final has neither v= nor e=");
        goto fail;
    }
    n = strcspn(text + 2, ",");
    if (!b64_decode(text + 2, n, sig, sizeof(sig), &sig_len)) {
        snprintf(err, errlen, "SCRAM server-final signature is not base64");
        goto fail;
    }
    if (sig_len != s->hash_len || CRYPTO_memcmp(sig, s->server_signature, s->hash_len) != 0) {
        snprintf(err, errlen,
                 "the broker's SCRAM server signature does not match (it does not know this "
                 "user's credential: a server in the middle?)");
        goto fail;
    }
    s->state = SCRAM_DONE;
    ok = true;
fail:
    free(text);
    return ok;
}

void
scram_clear(struct scram *s)
{
    if (s->password) {
        OPENSSL_cleanse(s->password, strlen(s->password));
        free(s->password);
    }
    if (s->client_first_bare) {
        OPENSSL_cleanse(s->client_first_bare, strlen(s->client_first_bare));
        free(s->client_first_bare);
    }
    OPENSSL_cleanse(s, sizeof(*s));
}

/* --- struct auth_mech glue ------------------------------------------------------------- */

static bool
scram_mech_start(enum scram_hash h, void *state, const struct auth_creds *c, struct auth_buf *out,
                 char *err, size_t errlen)
{
    return scram_client_first(state, h, c->username, c->password, NULL, out, err, errlen);
}

static bool
scram256_start(void *state, const struct auth_creds *c, struct auth_buf *out, char *err,
               size_t errlen)
{
    return scram_mech_start(SCRAM_SHA_256, state, c, out, err, errlen);
}

static bool
scram512_start(void *state, const struct auth_creds *c, struct auth_buf *out, char *err,
               size_t errlen)
{
    return scram_mech_start(SCRAM_SHA_512, state, c, out, err, errlen);
}

static bool
scram_mech_step(void *state, const uint8_t *in, size_t len, struct auth_buf *out, bool *done,
                char *err, size_t errlen)
{
    struct scram *s = state;

    if (s->state == SCRAM_SENT_FIRST) {
        return scram_client_final(s, in, len, out, err, errlen);
    }
    if (!scram_server_final(s, in, len, err, errlen)) {
        return false;
    }
    *done = true;
    return true;
}

static void
scram_mech_clear(void *state)
{
    scram_clear(state);
}

const struct auth_mech scram_sha256_mech = {
    .name = "SCRAM-SHA-256",
    .state_size = sizeof(struct scram),
    .start = scram256_start,
    .step = scram_mech_step,
    .clear = scram_mech_clear,
};

const struct auth_mech scram_sha512_mech = {
    .name = "SCRAM-SHA-512",
    .state_size = sizeof(struct scram),
    .start = scram512_start,
    .step = scram_mech_step,
    .clear = scram_mech_clear,
};
