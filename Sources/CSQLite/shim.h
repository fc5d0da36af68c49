#ifndef VITALS_CSQLITE_SHIM_H
#define VITALS_CSQLITE_SHIM_H

#include <sqlite3.h>

/* SQLITE_TRANSIENT is a macro casting -1 to a destructor pointer: it does
 * not import into Swift. Text and blobs are bound through these instead
 * (SQLite copies the bytes before returning). */
static inline int vitals_sqlite_bind_text(sqlite3_stmt *s, int i, const char *v, int n) {
    return sqlite3_bind_text(s, i, v, n, SQLITE_TRANSIENT);
}

#endif
