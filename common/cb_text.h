/* common/cb_text.h - text that must become a JSON string: messages that quote
 * what a sender or a child process wrote may hold bytes that are not UTF-8,
 * and jansson refuses such strings (json_string() returns NULL), which once
 * made an error reply lose its only error. Pure; thread-safe. */
#ifndef CB_TEXT_H
#define CB_TEXT_H
#include <stddef.h>

/* Replace, in place, every byte of `s` (NUL-terminated) that is not part of a
 * well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF) with '?'. Returns how many bytes were replaced. */
size_t cb_utf8_scrub(char *s);

#endif /* CB_TEXT_H */
