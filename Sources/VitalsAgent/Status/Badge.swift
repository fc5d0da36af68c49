import VitalsCore

/// A shields.io-style flat badge for READMEs and wikis: a grey label on the
/// left ("vitals", or the service name) and the state on the right, in the
/// state's colour. Served at `GET /v1/services/{name}/badge.svg`.
///
/// The state word is always written out, so the badge does not rely on
/// colour alone. Every piece of text is XML-escaped.
enum Badge {
    /// The colour for a state; the status page uses the same ones.
    static func color(_ state: HealthState) -> String {
        switch state {
        case .up: "#2e9e44"          // green
        case .degraded: "#d99a00"    // amber
        case .down: "#d9363e"        // red
        case .unknown: "#8a8a8a"     // grey
        case .maintenance: "#2f6fd0" // blue
        case .flapping: "#8e44ad"    // purple
        }
    }

    static func svg(label: String, state: HealthState) -> String {
        let value = state.rawValue
        let labelWidth = textWidth(label) + 10
        let valueWidth = textWidth(value) + 10
        let width = labelWidth + valueWidth
        let colour = color(state)
        let escapedLabel = xmlEscape(label)
        let escapedValue = xmlEscape(value)
        // Text is drawn at 10x scale (font-size 110) like shields.io, for
        // crisp rendering; positions and lengths are in tenths of a pixel.
        let labelX = labelWidth * 5
        let valueX = labelWidth * 10 + valueWidth * 5
        let labelLength = (labelWidth - 10) * 10
        let valueLength = (valueWidth - 10) * 10
        return """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="20" role="img" \
        aria-label="\(escapedLabel): \(escapedValue)">\
        <title>\(escapedLabel): \(escapedValue)</title>\
        <linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>\
        <stop offset="1" stop-opacity=".1"/></linearGradient>\
        <clipPath id="r"><rect width="\(width)" height="20" rx="3" fill="#fff"/></clipPath>\
        <g clip-path="url(#r)"><rect width="\(labelWidth)" height="20" fill="#555"/>\
        <rect x="\(labelWidth)" width="\(valueWidth)" height="20" fill="\(colour)"/>\
        <rect width="\(width)" height="20" fill="url(#s)"/></g>\
        <g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" \
        text-rendering="geometricPrecision" font-size="110">\
        <text aria-hidden="true" x="\(labelX)" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" \
        textLength="\(labelLength)">\(escapedLabel)</text>\
        <text x="\(labelX)" y="140" transform="scale(.1)" fill="#fff" textLength="\(labelLength)">\(escapedLabel)</text>\
        <text aria-hidden="true" x="\(valueX)" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" \
        textLength="\(valueLength)">\(escapedValue)</text>\
        <text x="\(valueX)" y="140" transform="scale(.1)" fill="#fff" textLength="\(valueLength)">\(escapedValue)</text>\
        </g></svg>

        """
    }

    /// An estimate of the text's width in pixels in 11px Verdana, the
    /// badge font: narrow, wide and capital letters differ enough to matter.
    static func textWidth(_ text: String) -> Int {
        var width = 0.0
        for ch in text {
            switch ch {
            case "i", "j", "l", "I", "!", "|", ".", ",", ":", ";", "'", " ": width += 3.9
            case "f", "r", "t", "(", ")", "[", "]", "{", "}", "-", "/", "1": width += 5.0
            case "m", "w", "M", "W", "@", "%": width += 10.5
            case _ where ch.isUppercase: width += 7.6
            case _ where ch.isASCII: width += 6.9
            default: width += 8.5 // wider scripts and symbols
            }
        }
        return max(Int(width.rounded(.up)), 1)
    }

    static func xmlEscape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            // Control characters are not allowed in XML 1.0.
            case _ where scalar.value < 0x20 && scalar != "\t" && scalar != "\n" && scalar != "\r":
                out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
