#ifndef VITALS_CCURL_SHIM_H
#define VITALS_CCURL_SHIM_H

#include <curl/curl.h>

/* curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic and
 * do not import into Swift. One typed wrapper per argument type we pass. */

static inline CURLcode vitals_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode vitals_easy_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode vitals_easy_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode vitals_easy_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode vitals_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }

typedef size_t (*vitals_write_callback)(char *ptr, size_t size, size_t nmemb, void *userdata);
static inline CURLcode vitals_easy_setopt_write_function(CURL *h, vitals_write_callback cb) { return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cb); }
static inline CURLcode vitals_easy_setopt_header_function(CURL *h, vitals_write_callback cb) { return curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, cb); }

/* Upload source (SMTP's DATA): CURLOPT_READFUNCTION with CURLOPT_READDATA. */
typedef size_t (*vitals_read_callback)(char *buffer, size_t size, size_t nitems, void *userdata);
static inline CURLcode vitals_easy_setopt_read_function(CURL *h, vitals_read_callback cb) { return curl_easy_setopt(h, CURLOPT_READFUNCTION, cb); }

static inline CURLcode vitals_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode vitals_easy_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode vitals_easy_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode vitals_easy_getinfo_pointer(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode vitals_easy_getinfo_string(CURL *h, CURLINFO i, char **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode vitals_easy_getinfo_socket(CURL *h, CURLINFO i, curl_socket_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode vitals_easy_getinfo_certinfo(CURL *h, struct curl_certinfo **v) { return curl_easy_getinfo(h, CURLINFO_CERTINFO, v); }

static inline CURLMcode vitals_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

/* CURLMsg's data is a union; give Swift a plain accessor. */
static inline CURLcode vitals_msg_result(const CURLMsg *msg) { return msg->data.result; }

/* Progress callback (VitalsActions webhooks): returning non-zero aborts the
 * transfer, which is how a cancelled webhook stops within a second. */
typedef int (*vitals_xferinfo_callback)(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
static inline CURLcode vitals_easy_setopt_xferinfo_function(CURL *h, vitals_xferinfo_callback cb) { return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, cb); }

#endif
