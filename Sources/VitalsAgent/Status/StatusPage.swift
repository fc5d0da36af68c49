import Foundation

/// The operator's status page, served at `GET /`: one self-contained HTML
/// document (inline CSS and vanilla JS, no external assets, no build step).
///
/// It refreshes itself from the JSON API without reloading: `v1/status`
/// every 2 s, `v1/events?since=…` incrementally, and per-service latency
/// history from `v1/services/{name}/explain`, fetched lazily for the rows on
/// screen only. Every URL it uses is relative, so it also works behind a
/// reverse proxy under a path prefix. Every piece of text from the API is
/// HTML-escaped before it reaches the DOM.
///
/// Write controls (hold, release, switchover, maintenance, ready) ask for the
/// bearer token once and keep it in `sessionStorage` for the tab.
///
/// The page is written as three files in `Page/` (status.html, status.css,
/// status.js), compiled into the binary (`.embedInCode` in Package.swift) so
/// that an installed agent needs nothing beside it. `status.html` links the
/// other two; here they are put inline, in place of the link and the script tag.
enum StatusPage {
    static let html: String = inline(
        template: String(decoding: PackageResources.status_html, as: UTF8.self),
        css: String(decoding: PackageResources.status_css, as: UTF8.self),
        js: String(decoding: PackageResources.status_js, as: UTF8.self))

    static let stylesheetTag = #"<link rel="stylesheet" href="status.css">"#
    static let scriptTag = #"<script src="status.js"></script>"#

    /// `template` with `css` in a `<style>` element in place of the stylesheet
    /// link, `js` in a `<script>` element in place of the script tag, and
    /// without the file's final newline.
    static func inline(template: String, css: String, js: String) -> String {
        precondition(template.contains(stylesheetTag) && template.contains(scriptTag),
                     "status.html must link status.css and status.js exactly as StatusPage expects")
        var page = template
            .replacingOccurrences(of: stylesheetTag, with: "<style>\n" + css + "</style>")
            .replacingOccurrences(of: scriptTag, with: "<script>\n" + js + "</script>")
        if page.hasSuffix("\n") { page.removeLast() }
        return page
    }
}
