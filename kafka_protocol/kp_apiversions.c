/*
 * kp_apiversions.c - ApiVersionsResponse v0-v4 (flexible from v3). No address here: the
 * rewrite lowers MaxVersion of every address-carrying api to what the codec can rewrite, so a
 * client never picks a version whose response kbridge would have to refuse.
 */
#include "kp_internal.h"

#include "kp_api.h"

#define KP_APIVERSIONS_MAX 4 /* highest ApiVersionsResponse version parsed here */
#define KP_API_ENTRY_MIN 6   /* ApiKey, MinVersion, MaxVersion */

/* One ApiVersion entry: caps MaxVersion in place when the api needs it and allows it. */
static enum kp_status
kp_apiversions_entry(struct kp_rw *rw, unsigned flex)
{
    struct kp_reader *r = &rw->in;
    int16_t key, min, max;
    size_t max_at;
    int cap;

    KP_TRY(kp_reader_i16(r, &key));
    KP_TRY(kp_reader_i16(r, &min));
    max_at = r->pos;
    KP_TRY(kp_reader_i16(r, &max));
    cap = kp_api_max_rewritable_version(key);
    if (cap >= 0 && max > cap) {
        if (min > cap) {
            rw->stats->uncappable++; /* no version left to offer: the caller decides */
        } else {
            KP_TRY(kp_rw_flush(rw, max_at));
            KP_TRY(kp_writer_i16(rw->out, (int16_t)cap));
            rw->copied = r->pos;
            rw->stats->capped++;
        }
    }
    return kp_skip_tags(r, flex);
}

enum kp_status
kp_apiversions_rewrite(struct kp_rw *rw, int16_t v)
{
    struct kp_reader *r = &rw->in;
    unsigned flex = v >= 3 ? KP_COMPACT : 0;
    int16_t error_code;
    int32_t n, i;

    KP_TRY(kp_reader_i16(r, &error_code));
    if (error_code == KP_ERR_UNSUPPORTED_VERSION) {
        /* The broker's fallback answer, in the v0 layout whatever was asked: pass it on. */
        return kp_reader_skip(r, kp_reader_remaining(r));
    }
    if (v < 0 || v > KP_APIVERSIONS_MAX) {
        return KP_UNSUPPORTED;
    }
    KP_TRY(kp_reader_array_len(r, flex, KP_API_ENTRY_MIN, &n)); /* ApiKeys */
    for (i = 0; i < n; i++) {
        KP_TRY(kp_apiversions_entry(rw, flex));
    }
    if (v >= 1) {
        KP_TRY(kp_reader_skip(r, 4)); /* ThrottleTimeMs */
    }
    return kp_skip_tags(r, flex); /* SupportedFeatures, FinalizedFeatures...: verbatim */
}
