import torch

from interp_lib.attacks import class_scores
from interp_lib.occlusion import window_positions


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def occlusion(model, x, target, window=4, stride=2, baseline=0.5, batch_size=256):
    x = x.detach()
    n, c, H, W = x.shape
    (h, w), (sh, sw) = _pair(window), _pair(stride)
    target = torch.as_tensor(target).expand(n)
    # one mask per window position: 1 inside the window, 0 elsewhere
    masks = []
    for i in window_positions(H, h, sh):
        for j in window_positions(W, w, sw):
            mask = torch.zeros(H, W, dtype=x.dtype)
            mask[i : i + h, j : j + w] = 1
            masks.append(mask)
    masks = torch.stack(masks)  # (P, H, W)
    baseline = torch.as_tensor(baseline, dtype=x.dtype).expand_as(x)
    P = len(masks)
    drops = torch.empty(n, P, dtype=x.dtype)
    with torch.no_grad():
        clean = class_scores(model(x), target)
        per_chunk = max(1, batch_size // P)  # images per chunk, all windows each
        for start in range(0, n, per_chunk):
            xs, bs = x[start : start + per_chunk, None], baseline[start : start + per_chunk, None]
            m = masks[None, :, None]  # (1, P, 1, H, W)
            occluded = (xs * (1 - m) + bs * m).flatten(0, 1)  # (n_chunk * P, C, H, W)
            t = target[start : start + per_chunk].repeat_interleave(P)
            scores = torch.cat(
                [
                    class_scores(model(occluded[k : k + batch_size]), t[k : k + batch_size])
                    for k in range(0, len(occluded), batch_size)
                ]
            )
            drops[start : start + per_chunk] = clean[start : start + per_chunk, None] - scores.view(-1, P)
    # each pixel: the mean drop over the windows that cover it, the same for every channel
    heat = torch.einsum("np,phw->nhw", drops, masks) / masks.sum(0)
    return heat[:, None].repeat(1, c, 1, 1)
