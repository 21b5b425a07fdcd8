/*
 * kp_buf.h - bounds-checked reader and growable writer for Kafka primitive types.
 * (Contract stub: the codec owner fills in the full reader/writer API.)
 */
#ifndef KB_KAFKA_PROTOCOL_KP_BUF_H
#define KB_KAFKA_PROTOCOL_KP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kp_status.h"

/* A growable output buffer owned by the caller. */
struct kp_writer {
    uint8_t *buf;  /* heap buffer, NULL until the first write */
    size_t len;    /* bytes written */
    size_t cap;    /* bytes allocated */
    bool failed;   /* an allocation failed; further writes are ignored */
};

void kp_writer_init(struct kp_writer *w);
void kp_writer_free(struct kp_writer *w);

#endif
