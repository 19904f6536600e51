import torch

from interp_lib.shape_bias import layer_activations


def cue_conflict(masks, shape, textures, background, generator=None):
    n, k = textures.shape[:2]
    offset = torch.randint(1, k, (n,), generator=generator)
    texture = (shape + offset) % k
    fills = textures[torch.arange(n), texture]
    images = masks * fills + (1 - masks) * background
    return images, texture


def shape_bias(model, x, shape, texture):
    with torch.no_grad():
        pred = model(x).argmax(1)
    shape_hits = (pred == shape).sum().item()
    texture_hits = (pred == texture).sum().item()
    if shape_hits + texture_hits == 0:
        return float("nan")
    return shape_hits / (shape_hits + texture_hits)


def linear_probe(model, layer, x_train, y_train, x_test, y_test, ridge=10.0):
    a_train = layer_activations(model, layer, x_train).double()
    a_test = layer_activations(model, layer, x_test).double()
    mu = a_train.mean(0)
    sd = a_train.std(0, unbiased=False).clamp_min(1e-6)
    z_train, z_test = (a_train - mu) / sd, (a_test - mu) / sd
    y = torch.nn.functional.one_hot(y_train, int(y_train.max()) + 1).double()
    b = y.mean(0)
    gram = z_train @ z_train.T + ridge * torch.eye(len(z_train), dtype=torch.float64)
    w = z_train.T @ torch.linalg.solve(gram, y - b)
    pred = (z_test @ w + b).argmax(1)
    return (pred == y_test).double().mean().item()
