/*
 * kp_status.h - result codes of the Kafka codec.
 * "Need more bytes" (KP_INCOMPLETE) is kept apart from "bad bytes" (KP_MALFORMED),
 * as twemproxy's AGAIN/ERROR are, so a stream reader can wait instead of failing.
 */
#ifndef KB_KAFKA_PROTOCOL_KP_STATUS_H
#define KB_KAFKA_PROTOCOL_KP_STATUS_H

enum kp_status {
    KP_OK = 0,      /* done */
    KP_INCOMPLETE,  /* the input ends before the value does; more bytes may fix it */
    KP_MALFORMED,   /* the bytes cannot be what the spec says they are */
    KP_UNSUPPORTED, /* valid Kafka, but an api/version this codec does not implement */
    KP_TOO_LARGE,   /* a size above the configured or representable maximum */
    KP_NOMEM        /* allocation failed */
};

/* Returns a static, human-readable name for s ("malformed", ...). Never NULL. */
const char *kp_status_str(enum kp_status s);

#endif
