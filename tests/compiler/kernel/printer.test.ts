// The kernel IR printer: loop nests with their marks, infix expressions with
// only the parentheses the meaning needs, every statement kind.
import { describe, expect, it } from "vitest";
import type { Stmt } from "../../../compiler/kernel/kir.js";
import { addE, baseOf, bin, if_, let_, load, mulE, num, parallel, reduce, ref, scatterAdd, sel, set, store, un } from "../../../compiler/kernel/kir.js";
import { printExpr, printKernel } from "../../../compiler/kernel/printer.js";

describe("printExpr", () => {
  it("parenthesizes by precedence and associativity only", () => {
    const [a, b, c] = [ref("a"), ref("b"), ref("c")];
    expect(printExpr(bin("*", bin("+", a, b), c))).toBe("(a + b) * c");
    expect(printExpr(bin("+", a, bin("*", b, c)))).toBe("a + b * c");
    expect(printExpr(bin("-", a, bin("-", b, c)))).toBe("a - (b - c)");
    expect(printExpr(bin("-", bin("-", a, b), c))).toBe("a - b - c");
    expect(printExpr(bin("idiv", a, 4))).toBe("a // 4");
    expect(printExpr(bin("mod", bin("+", a, 1), 4))).toBe("(a + 1) % 4");
    expect(printExpr(bin("max", a, num(-1)))).toBe("max(a, -1)");
    expect(printExpr(bin("*", a, num(-1)))).toBe("a * (-1)");
    expect(printExpr(un("neg", bin("+", a, b)))).toBe("-(a + b)");
    expect(printExpr(bin("+", sel(bin(">", a, 0), a, 0), 1))).toBe("(a > 0 ? a : 0) + 1");
    expect(printExpr(load("x", addE(baseOf("x"), mulE(ref("i"), 3))))).toBe("x[&x + i * 3]");
    expect(printExpr(un("fround", num(0.1)))).toBe("fround(0.1)");
  });
});

describe("printKernel", () => {
  it("prints a kernel as indented loop nests with its buffers", () => {
    const body: Stmt[] = [
      { k: "comment", text: "s = sum(x, 1)" },
      parallel("i", 3, [
        let_("acc", 0),
        reduce("j", 4, [set("acc", bin("+", ref("acc"), load("x", addE(mulE(ref("i"), 4), ref("j")))))]),
        store("s", ref("i"), ref("acc")),
      ]),
      { k: "for", v: "p", from: 1, to: 5, mark: "parallel", vectorizable: true, body: [store("s", 0, load("x", ref("p")), true)] },
      if_(bin(">=", ref("r"), 0), [scatterAdd("s", ref("r"), num(1))], [store("s", 0, num(0))]),
      { k: "extern", call: "product", reference: [store("s", 1, num(2))] },
    ];
    expect(printKernel("sum_x", [{ name: "s", size: 3, label: "s" }, { name: "x", size: 12, label: "x0" }], body)).toBe(
      [
        "kernel sum_x(s[3], x[12] = \"x0\") {",
        "  # s = sum(x, 1)",
        "  for i in 0..3 parallel {",
        "    let acc = 0",
        "    for j in 0..4 reduce {",
        "      acc = acc + x[i * 4 + j]",
        "    }",
        "    s[i] = acc",
        "  }",
        "  for p in 1..5 parallel vector {",
        "    s[0] += x[p]",
        "  }",
        "  if r >= 0 {",
        "    scatter-add s[r] += 1",
        "  } else {",
        "    s[0] = 0",
        "  }",
        "  extern product {",
        "    s[1] = 2",
        "  }",
        "}",
        "",
      ].join("\n"),
    );
  });
});
