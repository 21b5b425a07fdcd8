/*
 * kp_status.c - names of the codec's result codes, for the caller's log lines.
 * The codec itself never logs; callers print kp_status_str() and the failing offset.
 */
#include "kp_status.h"

const char *
kp_status_str(enum kp_status s)
{
    switch (s) {
    case KP_OK:
        return "ok";
    case KP_INCOMPLETE:
        return "incomplete";
    case KP_MALFORMED:
        return "malformed";
    case KP_UNSUPPORTED:
        return "unsupported";
    case KP_TOO_LARGE:
        return "too large";
    case KP_NOMEM:
        return "out of memory";
    }
    return "unknown status";
}
