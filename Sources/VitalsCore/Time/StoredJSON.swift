import Foundation

/// How Vitals stores values it reads back (the journal, the snapshot, the
/// decision state a cluster leader hands over): JSON with sorted keys (equal
/// values give equal bytes, diffs stay small), `/` unescaped, keys as the
/// types name them (`nextEventID` does not survive a snake_case round trip),
/// and dates as ISO 8601 UTC with milliseconds, which round-trip to the
/// millisecond and an operator can read.
public enum StoredJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ISOTime.format(date))
        }
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = ISOTime.parse(text) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an ISO 8601 date, got \"\(text)\"")
        }
        return decoder
    }
}
