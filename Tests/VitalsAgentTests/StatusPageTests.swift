import Foundation
import Testing
import VitalsCore
import VitalsHTTP
@testable import VitalsAgent

/// The status page (`GET /`) as a document, and the service badge
/// (`GET /v1/services/{name}/badge.svg`). What the page does in a browser is
/// in StatusPageCannedAPITests and StatusPageBrowserTests.
@Suite struct StatusPageTests {
    let page = StatusPage.html

    @Test func pageIsOneSelfContainedDocument() {
        #expect(page.hasPrefix("<!doctype html>"))
        #expect(page.contains(#"<meta name="viewport" content="width=device-width, initial-scale=1">"#))
        #expect(page.contains(#"<meta charset="utf-8">"#))
        #expect(page.hasSuffix("</html>"))
        // No external assets: no absolute URLs at all, no external scripts
        // or stylesheets, no frameworks.
        #expect(!page.contains("http://"))
        #expect(!page.contains("https://"))
        #expect(!page.contains("<script src"))
        #expect(!page.contains("<link rel=\"stylesheet\""))
        #expect(!page.contains("@import"))
        // status.css and status.js put inline, each once, where status.html links them.
        #expect(page.components(separatedBy: "<style>").count == 2)
        #expect(page.components(separatedBy: "<script>").count == 2)
        #expect(page.components(separatedBy: "</script>").count == 2)
    }

    @Test func stylesheetAndScriptGoInlineWhereTheTemplateLinksThem() {
        let template = "<head>\n\(StatusPage.stylesheetTag)\n</head>\n<body>\n\(StatusPage.scriptTag)\n</body>\n"
        #expect(StatusPage.inline(template: template, css: "a{}\n", js: "f();\n")
                == "<head>\n<style>\na{}\n</style>\n</head>\n<body>\n<script>\nf();\n</script>\n</body>")
    }

    @Test func badgeHasTheStateWordAndColour() {
        for state in HealthState.allCases {
            let svg = Badge.svg(label: "vitals", state: state)
            #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
            #expect(svg.contains(">\(state.rawValue)</text>"))
            #expect(svg.contains("fill=\"\(Badge.color(state))\""))
            #expect(svg.contains("<title>vitals: \(state.rawValue)</title>"))
            #expect(svg.hasSuffix("</svg>\n"))
        }
        #expect(Badge.color(.up) != Badge.color(.down))
        #expect(Set(HealthState.allCases.map(Badge.color)).count == HealthState.allCases.count)
    }

    @Test func badgeEscapesTheLabel() {
        let svg = Badge.svg(label: #"a<b&c"d'e>"#, state: .down)
        #expect(svg.contains("a&lt;b&amp;c&quot;d&apos;e&gt;"))
        #expect(!svg.contains("a<b"))
        #expect(!svg.contains("b&c"))
        #expect(!svg.contains(#"c"d"#))
        // Every ampersand starts an entity, and no text contains a bare "<".
        #expect(svg.matches(of: /&(?!amp;|lt;|gt;|quot;|apos;)/).isEmpty)
        #expect(svg.matches(of: />[^<]*"[^<]*</).isEmpty)
    }

    @Test func badgeWidthFollowsTheText() throws {
        func width(_ svg: String) throws -> Int {
            let match = try #require(svg.firstMatch(of: /width="(\d+)" height="20"/))
            return try #require(Int(match.1))
        }
        let short = try width(Badge.svg(label: "db", state: .up))
        let long = try width(Badge.svg(label: "payments-api-eu-west-1", state: .up))
        #expect(long > short + 80)
        #expect(try width(Badge.svg(label: "x", state: .maintenance)) > width(Badge.svg(label: "x", state: .up)))
    }
}
