# The workloads in PyTorch (the optional column of the peers' benchmark).
# Reads the workloads' arrays from the file that bench/peers/torch.ts writes
# (a JSON header line, then raw little-endian float32/int32 data), runs each
# step with the same maths as gradc's graphs, and prints one JSON line per
# workload: the losses of the first two steps and the median step time.
import json
import math
import sys
import time

import numpy as np
import torch

torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)


def load(path):
    with open(path, "rb") as f:
        header = json.loads(f.readline())
        blob = f.read()
    def arr(spec):
        dtype = np.int32 if spec["dtype"] == "i32" else np.float32
        count = int(np.prod(spec["shape"])) if spec["shape"] else 1
        a = np.frombuffer(blob, dtype=dtype, count=count, offset=spec["offset"]).reshape(spec["shape"])
        return torch.from_numpy(a.copy())
    return header, arr


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    xc = x - mu
    return xc * torch.rsqrt((xc * xc).mean(-1, keepdim=True) + eps) * g + b


def gelu(x):
    # tanh form, as gradc's
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))


def loss_fn(name, p, x, t, block):
    if name in ("mlpSgd", "mlpAdam"):
        h = torch.relu(x @ p["W1"] + p["b1"])
        h = torch.relu(h @ p["W2"] + p["b2"])
        return torch.nn.functional.cross_entropy(h @ p["W3"] + p["b3"], t.long())
    if name == "xor":
        return ((torch.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"] - t) ** 2).mean()
    if name == "transformer":
        B, S, D, H, eps = block["batch"], block["seq"], block["d"], block["heads"], block["eps"]
        dh = D // H
        split = lambda a: a.reshape(B, S, H, dh).transpose(1, 2)
        a = layer_norm(x, p["ln1g"], p["ln1b"], eps)
        q, k, v = split(a @ p["Wq"]), split(a @ p["Wk"]), split(a @ p["Wv"])
        s = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(dh))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, S, D) @ p["Wo"]
        h = x + o
        m = gelu(layer_norm(h, p["ln2g"], p["ln2b"], eps) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        return ((h + m - t) ** 2).mean()
    if name == "cnn":
        # NHWC data and [fh, fw, cin, cout] filters, as gradc lays them out
        y = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), p["K"].permute(3, 2, 0, 1)) + p["kb"].reshape(1, -1, 1, 1)
        r = torch.nn.functional.max_pool2d(torch.relu(y), 2).permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return torch.nn.functional.cross_entropy(r @ p["W"] + p["b"], t.long())
    raise ValueError(name)


def median_time(fn, max_time, min_samples):
    for _ in range(3):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_samples or time.perf_counter() - start < max_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 10000:
            break
    return float(np.median(times)) * 1000


def main():
    header, arr = load(sys.argv[1])
    max_time, min_samples = header["maxTime"], header["minSamples"]
    for w in header["workloads"]:
        p = {n: arr(s).requires_grad_() for n, s in w["params"].items()}
        x = arr(w["x"])
        t = arr(w["target"])
        opt = torch.optim.SGD(p.values(), lr=w["lr"]) if w["optimizer"] == "sgd" else torch.optim.Adam(p.values(), lr=w["lr"])

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(w["name"], p, x, t, header["block"])
            loss.backward()
            opt.step()
            return loss.item()

        losses = [step(), step()]
        ms = median_time(step, max_time, min_samples) if max_time > 0 else None
        print(json.dumps({"name": w["name"], "losses": losses, "ms": ms}), flush=True)
    n = header["sgemm"]["n"]
    a, b = arr(header["sgemm"]["a"]), arr(header["sgemm"]["b"])
    with torch.no_grad():
        row = (a @ b)[0].tolist()
        ms = median_time(lambda: a @ b, max_time, min_samples) if max_time > 0 else None
    print(json.dumps({"name": "sgemm", "firstRow": row, "ms": ms, "n": n}), flush=True)


main()
