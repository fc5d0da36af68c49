#ifndef VITALS_CARES_SHIM_H
#define VITALS_CARES_SHIM_H

#include <ares.h>
#include <ares_dns.h>
#include <arpa/inet.h>

/* ares_getsock's bitmask is read through function-like macros, which do not
 * import into Swift. */
static inline int vitals_ares_sock_readable(int bits, int index) { return ARES_GETSOCK_READABLE(bits, index) ? 1 : 0; }
static inline int vitals_ares_sock_writable(int bits, int index) { return ARES_GETSOCK_WRITABLE(bits, index) ? 1 : 0; }

/* The response code and the truncation bit of a DNS message's header
 * (RFC 1035 4.1.1); the caller has checked that the header is there. */
static inline int vitals_dns_header_rcode(const unsigned char *message) { return DNS_HEADER_RCODE(message); }
static inline int vitals_dns_header_tc(const unsigned char *message) { return DNS_HEADER_TC(message); }

#endif
