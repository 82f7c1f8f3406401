"""The checkpoint writing and reading paths: digest styles, torch's CRC option, mapped loads."""

import os
import zlib

import numpy as np
import pytest
import torch

import trialbench
from trialbench import plaindata, safeio
from trialbench.errors import CheckpointCorruptError

from conftest import guide_data, guide_trial


def trained(tmp_path):
    trial = guide_trial().with_train_generator(guide_data(n=16, batch_size=4))
    trial.run(1)
    return trial


def test_digest_is_wsum_and_old_adler32_and_crc32_digests_still_verify(tmp_path):
    payload = {'w': torch.arange(6.0), 'big': torch.randn(3000), 'n': 3}
    new = plaindata.digest(payload)
    assert new.startswith('wsum:') and len(new) == len('wsum:') + 8
    adler = f"adler32:{plaindata._walk(payload, zlib.adler32, 1)[0]:08x}"  # files written before
    crc = plaindata._walk(payload, zlib.crc32, 0)[0]  # and before those
    for expected in (new, adler, crc):
        assert plaindata.digest_matches(payload, expected)
        changed = {**payload, 'big': payload['big'].clone()}
        changed['big'][2500] += 1  # one word in the second 4 KiB block
        assert not plaindata.digest_matches(changed, expected)
    assert not plaindata.digest_matches(payload, None)

    sd = trained(tmp_path).state_dict()
    sd.pop('digest')
    path = tmp_path / 'old.pt'
    for old in (plaindata._walk(sd, zlib.crc32, 0)[0],
                f"adler32:{plaindata._walk(sd, zlib.adler32, 1)[0]:08x}"):
        torch.save({**sd, 'digest': old}, path)
        assert trialbench.load_checkpoint(path)['kind'] == 'trial'
        guide_trial().load(path)
    torch.save({**sd, 'digest': plaindata._walk(sd, zlib.crc32, 0)[0] ^ 1}, path)
    with pytest.raises(CheckpointCorruptError, match='digest'):
        guide_trial().load(path)


def test_wsum_sees_a_swap_of_two_words_and_every_byte_after_the_last_block():
    data = np.random.default_rng(0).integers(0, 256, 3 * 4096 + 13, dtype=np.uint8)
    base = plaindata.wsum(data)
    words = data[:4096].view('<u8').copy()
    swapped = data.copy()
    swapped[:4096].view('<u8')[[3, 300]] = words[[300, 3]]
    assert plaindata.wsum(swapped) != base
    for at in (0, 4095, 4096 * 3 + 5, len(data) - 1):
        flipped = data.copy()
        flipped[at] ^= 1
        assert plaindata.wsum(flipped) != base
    assert plaindata.wsum(data.tobytes()) == base
    assert plaindata.wsum(data[:-1]) != base


def test_save_restores_torchs_crc_option(tmp_path):
    assert torch.serialization.get_crc32_options()
    safeio.save_torch({'w': torch.ones(3)}, tmp_path / 'a.pt')
    assert torch.serialization.get_crc32_options()
    with pytest.raises(trialbench.errors.CheckpointSaveError):  # fails inside torch.save
        safeio.save_torch({'w': torch.ones(3), 'f': lambda: 0}, tmp_path / 'b.pt')
    assert not (tmp_path / 'b.pt').exists()
    assert torch.serialization.get_crc32_options()
    assert torch.load(tmp_path / 'a.pt', weights_only=True)['w'].tolist() == [1.0, 1.0, 1.0]


def test_load_keeps_nothing_mapped_from_the_file(tmp_path):
    trial = trained(tmp_path)
    path = tmp_path / 'trial.pt'
    trial.save(path)
    other = guide_trial()
    other.load(path)
    kept = [t for s in other.optimizer.state.values() for t in s.values()
            if isinstance(t, torch.Tensor)]
    kept += list(other.model.state_dict().values())
    assert kept and all(t.untyped_storage().filename is None for t in kept)
    for mine, theirs in zip(other.model.parameters(), trial.model.parameters()):
        assert torch.equal(mine, theirs)
    os.unlink(path)  # nothing holds the file: the trial keeps working without it
    other.with_train_generator(guide_data(n=16, batch_size=4))
    other.run(2)
    assert len(other.history) == 2


def test_safetensors_export_is_written_in_place(tmp_path):
    trial = trained(tmp_path)
    path, side = trial.export(tmp_path / 'm.safetensors')
    assert sorted(os.listdir(tmp_path)) == ['m.safetensors', 'm.safetensors.json']
    data = trialbench.load_checkpoint(path)
    assert data['metadata']['name'] == trial.name
    for k, v in trial.model.state_dict().items():
        assert torch.equal(data['model'][k], v)


def test_python_random_state_is_one_tensor_and_the_old_list_form_restores():
    import random
    from trialbench import rng
    random.seed(7)
    saved = rng.capture()
    assert isinstance(saved['python']['internal'], torch.Tensor)
    expected = [random.random() for _ in range(3)]
    for internal in (saved['python']['internal'], saved['python']['internal'].tolist()):
        random.seed(99)
        rng.restore({**saved, 'python': {**saved['python'], 'internal': internal}})
        assert [random.random() for _ in range(3)] == expected
