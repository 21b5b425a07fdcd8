/* version.h - kbridge's version, for --version, the start-up line and the IAM user agent. */
#ifndef KB_PROXY_VERSION_H
#define KB_PROXY_VERSION_H

#define KB_VERSION "0.1.0"

#endif
