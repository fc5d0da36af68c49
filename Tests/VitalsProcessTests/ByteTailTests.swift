import Testing
import VitalsProcess

@Suite struct ByteTailTests {
    @Test func keepsTheLastBytesAndCountsAll() {
        var tail = ByteTail(limit: 5)
        tail.append(Array("abc".utf8))
        #expect(tail.bytes == Array("abc".utf8))
        tail.append(Array("defg".utf8))
        #expect(tail.bytes == Array("cdefg".utf8))
        tail.append(Array("0123456789".utf8))
        #expect(tail.bytes == Array("56789".utf8))
        #expect(tail.totalBytes == 17)
    }

    @Test func aLimitOfZeroKeepsNothing() {
        var tail = ByteTail(limit: 0)
        tail.append([1, 2, 3])
        #expect(tail.bytes == [])
        #expect(tail.totalBytes == 3)
    }
}
