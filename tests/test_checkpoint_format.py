"""The checkpoint writing and reading paths: digest styles, torch's CRC option, mapped loads."""

import os

import numpy as np
import pytest
import torch

import trialbench
from trialbench import plaindata, safeio
from trialbench.errors import CheckpointCorruptError, UnsupportedFormatVersion

from conftest import guide_data, guide_trial


def trained(tmp_path):
    trial = guide_trial().with_train_generator(guide_data(n=16, batch_size=4))
    trial.run(1)
    return trial


def test_digest_is_xxh3_and_old_adler32_and_crc32_digests_still_verify(tmp_path):
    payload = {'w': torch.arange(6.0), 'big': torch.randn(3000), 'n': 3}
    new = plaindata.digest(payload)
    assert new.startswith('xxh3:') and len(new) == len('xxh3:') + 16
    adler = plaindata._checksum(payload, 'adler32')  # how files written before were digested
    crc = plaindata._checksum(payload, 'crc32')  # and before those
    assert adler.startswith('adler32:') and isinstance(crc, int)
    for expected in (new, adler, crc):
        assert plaindata.digest_matches(payload, expected)
        changed = {**payload, 'big': payload['big'].clone()}
        changed['big'][2500] += 1
        assert not plaindata.digest_matches(changed, expected)
    for unknown in (None, 'wsum:00000000', f'md5:{new[5:]}', True):
        assert not plaindata.digest_matches(payload, unknown)

    sd = trained(tmp_path).state_dict()
    sd.pop('digest')
    path = tmp_path / 'old.pt'
    for old in (plaindata._checksum(sd, 'crc32'), plaindata._checksum(sd, 'adler32')):
        torch.save({**sd, 'digest': old}, path)
        assert trialbench.load_checkpoint(path)['kind'] == 'trial'
        guide_trial().load(path)
    torch.save({**sd, 'digest': plaindata._checksum(sd, 'crc32') ^ 1}, path)
    with pytest.raises(CheckpointCorruptError, match='digest'):
        guide_trial().load(path)
    torch.save({**sd, 'digest': 'sha9:' + new}, path)  # a kind of digest not known here
    with pytest.raises(UnsupportedFormatVersion, match="does not check .'sha9:.*upgrade"):
        guide_trial().load(path)


def test_digest_sees_a_flipped_bit_anywhere_a_swap_of_two_words_and_a_changed_shape():
    data = torch.from_numpy(np.random.default_rng(0).integers(0, 256, 3 * 4096 + 13,
                                                              dtype=np.uint8))
    base = plaindata.digest({'t': data})
    for at in (0, 4095, 4096 * 3 + 5, len(data) - 1):
        flipped = data.clone()
        flipped[at] ^= 1
        assert plaindata.digest({'t': flipped}) != base
    swapped = data.clone()
    words = swapped[:4096].view(torch.int64)
    words[[3, 300]] = words[[300, 3]].clone()
    assert plaindata.digest({'t': swapped}) != base
    assert plaindata.digest({'t': data[:-1]}) != base
    assert plaindata.digest({'t': data[:4096].view(64, 64)}) != plaindata.digest({'t': data[:4096]})
    assert plaindata.digest({'t': data.clone()}) == base


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
