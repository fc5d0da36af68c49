import CSQLite

/// A failed SQLite call, in SQLite's words, naming what was being done.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var code: Int32
    public var message: String

    /// The file is not a database, or its pages are damaged: moving it
    /// aside is the only way on.
    public var isCorruption: Bool {
        let primary = code & 0xff
        return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB
    }

    public var description: String { "\(call): \(message) (SQLite code \(code))" }
}

/// One SQLite connection, used from one thread at a time (the writer's,
/// or a reader's): the recorder keeps each behind a mutex, hence
/// `@unchecked Sendable`. The C boundary is wrapped here once: every
/// call's result code is checked and turned into `SQLiteError`.
final class SQLiteConnection: @unchecked Sendable {
    private(set) var handle: OpaquePointer?
    let path: String
    private var statements: [String: Statement] = [:]

    init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        self.path = path
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw SQLiteError(call: "open \(path)", code: rc, message: message)
        }
        handle = db
        // A reader waits briefly for the writer's checkpoint rather than failing.
        sqlite3_busy_timeout(db, 2000)
    }

    deinit { close() }

    func close() {
        statements.values.forEach { $0.finalize() }
        statements = [:]
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    func error(_ call: String, _ rc: Int32) -> SQLiteError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
        return SQLiteError(call: call, code: sqlite3_extended_errcode(handle), message: message.isEmpty ? "code \(rc)" : message)
    }

    /// Runs statements that return no rows we need.
    func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(String(sql.prefix(60)), rc) }
    }

    /// A prepared statement, kept for reuse; reset and unbound for each use.
    func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        if let statement = statements[sql] {
            statement.reset()
            return statement
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error("prepare \(sql.prefix(60))", rc) }
        let statement = Statement(connection: self, stmt: stmt, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Rows changed by the last insert, update or delete.
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// The first column of the first row, as text (for pragmas).
    func text(_ sql: String) throws(SQLiteError) -> String? {
        let statement = try prepare(sql)
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return statement.text(0)
    }

    func transaction(_ body: () throws(SQLiteError) -> Void) throws(SQLiteError) {
        try execute("BEGIN IMMEDIATE")
        do {
            try body()
            try execute("COMMIT")
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// A statement of one connection, used under that connection's mutex.
final class Statement: @unchecked Sendable {
    private unowned let connection: SQLiteConnection
    private var stmt: OpaquePointer?
    let sql: String

    init(connection: SQLiteConnection, stmt: OpaquePointer, sql: String) {
        self.connection = connection
        self.stmt = stmt
        self.sql = sql
    }

    func finalize() {
        sqlite3_finalize(stmt)
        stmt = nil
    }

    func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    @discardableResult
    func bind(_ values: [SQLValue]) throws(SQLiteError) -> Statement {
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .int(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let v):
                rc = v.withCString { vitals_sqlite_bind_text(stmt, index, $0, -1) }
            case .null: rc = sqlite3_bind_null(stmt, index)
            }
            guard rc == SQLITE_OK else { throw connection.error("bind \(index) of \(sql.prefix(40))", rc) }
        }
        return self
    }

    /// Steps once: true with a row to read, false when done.
    func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(stmt)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error("step \(sql.prefix(60))", rc)
        }
    }

    /// Runs a statement that returns no rows.
    func run(_ values: [SQLValue] = []) throws(SQLiteError) {
        try bind(values)
        while try step() {}
        sqlite3_reset(stmt)
    }

    func int(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }
    func double(_ column: Int32) -> Double { sqlite3_column_double(stmt, column) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(stmt, column) == SQLITE_NULL }
    func text(_ column: Int32) -> String? {
        guard let c = sqlite3_column_text(stmt, column) else { return nil }
        return String(cString: c)
    }
}

enum SQLValue {
    case int(Int64)
    case double(Double)
    case text(String)
    case null
}
