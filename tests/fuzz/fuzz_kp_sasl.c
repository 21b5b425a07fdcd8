/*
 * fuzz_kp_sasl.c - libFuzzer harness for the SASL response readers kbridge runs on a broker's
 * answers (kp_sasl.h): SaslHandshake and SaslAuthenticate v0-v2 bodies. The first input byte
 * picks the reader and version, the rest is the body. Invariants are checked with abort().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kp_sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_require(bool ok)
{
    if (!ok) {
        abort();
    }
}

/* Views lie inside the body, and a failed read leaves out zeroed. */
static void
fuzz_auth(const uint8_t *body, size_t len, int16_t v)
{
    struct kp_sasl_auth_result res;
    enum kp_status st = kp_sasl_authenticate_response(body, len, v, &res);

    if (st != KP_OK) {
        fuzz_require(res.error == 0 && res.auth_bytes.ptr == NULL && res.error_message.null);
        return;
    }
    fuzz_require(res.session_lifetime_ms >= 0);
    fuzz_require(res.auth_bytes.len <= len);
    if (res.auth_bytes.len) {
        fuzz_require(res.auth_bytes.ptr >= body &&
                     (size_t)(res.auth_bytes.ptr - body) <= len - res.auth_bytes.len);
    }
    if (!res.error_message.null && res.error_message.len) {
        fuzz_require(res.error_message.ptr >= body &&
                     (size_t)(res.error_message.ptr - body) <= len - res.error_message.len);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kp_sasl_handshake_result hs;
    const uint8_t *body = data + 1;
    size_t len;

    if (size < 1) {
        return 0;
    }
    len = size - 1;
    switch (data[0] % 4) {
    case 0:
        if (kp_sasl_handshake_response(body, len, "SCRAM-SHA-512", &hs) == KP_OK) {
            fuzz_require(hs.n_mechanisms >= 0);
            fuzz_require(strlen(hs.mechanisms) < sizeof(hs.mechanisms));
        } else {
            fuzz_require(!hs.offered && hs.n_mechanisms == 0);
        }
        break;
    default:
        fuzz_auth(body, len, (int16_t)(data[0] % 4 - 1));
        break;
    }
    return 0;
}
