import torch


def predict(model, x, batch_size=256):
    with torch.no_grad():
        logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return logits.argmax(dim=1), torch.softmax(logits, dim=1)
