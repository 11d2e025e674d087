"""Tiny datasets written in each release's own layout, for the reader and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from covtool.core.imageio import write_image


def png(path: Path, value: int = 100, shape=(12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.full(shape, value, dtype=np.uint8))
    return path


def tif16(path: Path, value: int = 1000, shape=(8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, np.full(shape, value, dtype=np.uint16))
    return path


def tif_unit(path: Path, value: int = 1000, shape=(8, 8)) -> Path:
    """A slice of COVID-CTset's training part: 32-bit float, divided by the image's maximum."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full(shape, value, dtype=np.float32)
    img[0, 0] = 2 * value
    write_image(path, img / img.max())
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def covid_ct(root: Path) -> Path:
    """COVID-CT: 4 COVID images of 2 patients, 3 non-COVID, the split lists, the MetaInfo CSV."""
    cov = root / "Images-processed" / "CT_COVID"
    non = root / "Images-processed" / "CT_NonCOVID"
    for name in ("2020.01.24-p1-1.png", "2020.01.24-p1-2.png", "2020.02.10-p3-1.png", "2020.02.10-p3-2%0.png"):
        png(cov / name)
    for name in ("0.jpg", "1.jpg", "2.png"):
        png(non / name)
    split = root / "Data-split"
    write(split / "COVID" / "trainCT_COVID.txt", "2020.01.24-p1-1.png\n2020.01.24-p1-2.png\n\n")
    write(split / "COVID" / "valCT_COVID.txt", "2020.02.10-p3-1.png\n")
    write(split / "COVID" / "testCT_COVID.txt", "2020.02.10-p3-2%0.png\n")
    write(split / "NonCOVID" / "trainCT_NonCOVID.txt", "0.jpg\n1.jpg\n")
    write(split / "NonCOVID" / "testCT_NonCOVID.txt", "2.png\n")
    write(split / "NonCOVID" / "valCT_NonCOVID.txt", "")
    write(root / "COVID-CT-MetaInfo.csv",
          "File name,Patient ID,DOI,Captions,Age\n"
          "2020.01.24-p1-1.png,Patient 1,10.1101/2020.01.24,\"Fig 1a, GGO\",45\n"
          "2020.01.24-p1-2.png,Patient 1,10.1101/2020.01.24,Fig 1b,45\n"
          "2020.02.10-p3-1.png,Patient 7,10.1101/2020.02.10,Fig 3,\n"
          "2020.02.10-p3-2%0.png,Patient 7,10.1101/2020.02.10,Fig 3 right,\n")
    return root


def covid_cxr(root: Path) -> Path:
    """The COVID-19 image collection: 6 rows (X-ray PA/AP/L, a CT), 3 patients."""
    header = ("patientid,offset,sex,age,finding,survival,view,modality,date,location,filename,doi,url,"
              "license,clinical notes,other notes\n")
    rows = [
        "2,0,M,65,Pneumonia/Viral/COVID-19,Y,PA,X-ray,2020,Wuhan,a.png,10.1/x,http://a,CC BY,\"cough, fever\",",
        "2,3,M,65,Pneumonia/Viral/COVID-19,Y,AP,X-ray,2020,Wuhan,b.jpg,10.1/x,http://a,CC BY,,",
        "5,,F,40,No Finding,,PA,X-ray,,,c.png,,http://c,,,",
        "5,,F,40,No Finding,,L,X-ray,,,d.png,,http://c,,,",
        "9,1,M,70,Pneumonia/Bacterial/Streptococcus,N,PA,X-ray,,,e.png,,http://e,,,",
        "2,5,M,65,Pneumonia/Viral/COVID-19,Y,Axial,CT,,,f.png,10.1/x,http://a,,,",
    ]
    write(root / "metadata.csv", header + "\n".join(rows) + "\n")
    for name in "abcdef":
        png(root / "images" / (f"{name}.jpg" if name == "b" else f"{name}.png"))
    return root


def covid_ctset(root: Path, detail_rows: list[str] | None = None) -> Path:
    """COVID-CTset: both parts of the release (raw 16-bit series of two patients; flattened
    training slices of two others, float divided by the maximum), fold-1 lists, details."""
    for sr in ("SR_2", "SR_3"):
        for i in (1, 2, 10):
            tif16(root / "COVID-CTset" / "137covid" / "patient1" / sr / f"IM{i:05d}.tif")
    for i in (3, 4):
        tif16(root / "COVID-CTset" / "normal1" / "patient168" / "SR_2" / f"IM{i:05d}.tif")
    tv = root / "Training&Validation"
    tif_unit(tv / "train1" / "157covid_patient3_SR_4_IM00020.tif")
    tif_unit(tv / "train1" / "157covid_patient3_SR_4_IM00021.tif")
    tif_unit(tv / "validation1" / "normal2_patient200_SR_2_IM00005.tif")
    write(tv / "CSV" / "train1.csv", "filename,class\n137covid_patient1_SR_2_IM00010.tif,covid\n"
          "157covid_patient3_SR_4_IM00020.tif,covid\n157covid_patient3_SR_4_IM00021.tif,covid\n")
    write(tv / "CSV" / "validation1.csv", "filename,class\nnormal2_patient200_SR_2_IM00005.tif,normal\n")
    head = ("Patient ID,SEX,AGE,Date,COVID-19 Infection,SR_2 Folder thickness(mm),"
            "SR_3 Folder thickness(mm),SR_4 Folder thickness(mm)\n")
    rows = detail_rows or ["patient1,F,053Y,20200407,Positive,4,6,1.5",
                           "patient3,M,066Y,20200418,Positive,5,5,5",
                           "patient168,F,052Y,20200314,Negative,6,1.5,1.5",
                           "patient200,M,031Y,20200320,Negative,6,N/A,8"]
    write(root / "Patient_details.csv", head + "\n".join(rows) + "\n")
    return root


def tem(root: Path) -> Path:
    """TEM: train/test folders of two classes, annotations (points, a centre line), pixel sizes."""
    spec = {("train", "Adenovirus"): {"a1": "10 10\n20 20\n", "a2": "# centre points\n5 5\n"},
            ("test", "Adenovirus"): {"a3": "1 1\n2 2\n3 3\n"},
            ("train", "Ebola"): {"e1": "1 1 10 10 20 5\n"}}
    sizes = ["image,pixel_size_nm"]
    for (split, cls), images in spec.items():
        for stem, ann in images.items():
            png(root / split / cls / f"{stem}.png", shape=(32, 40))
            write(root / split / cls / f"{stem}.txt", ann)
            sizes.append(f"{stem}.png,{0.5 + len(sizes)}")
    write(root / "pixel_sizes.csv", "\n".join(sizes) + "\n")
    return root


#: The COVID-19 image collection's metadata.csv header as of June 2020 (28 named columns).
CXR_JUNE_2020 = ("patientid,offset,sex,age,finding,survival,intubated,intubation_present,went_icu,"
                 "in_icu,needed_supplemental_O2,extubated,temperature,pO2_saturation,leukocyte_count,"
                 "neutrophil_count,lymphocyte_count,view,modality,date,location,folder,filename,doi,"
                 "url,license,clinical_notes,other_notes")


def _cxr_line(pid, finding, view, modality, folder, name, notes="", extra="", pcr=None):
    """One metadata.csv line in the release's column order; ``pcr`` given: the later schema."""
    cells = [pid, "0", "F", "64", finding] + ([pcr] if pcr is not None else [])
    cells += ["Y"] + [""] * 11 + [view, modality, "May 1, 2020", "Lisbon, Portugal", folder,
                                  name, "10.1/x", "http://x", "CC BY", notes, "", extra]
    return ",".join(f'"{c}"' if "," in c else c for c in cells)


def covid_cxr_june2020(root: Path) -> Path:
    """The collection as of June 2020: a comma ends every line (an unnamed 29th column, empty but
    on one row), one image listed under patients 285 and 339 (their other rows: one each), one
    under 287 and 340, a CT volume in volumes/ and a missing image."""
    lines = [CXR_JUNE_2020 + ",",
             _cxr_line("285", "COVID-19", "PA", "X-ray", "images", "p1.jpg", "first, listing"),
             _cxr_line("285", "COVID-19", "AP", "X-ray", "images", "p2.jpg"),
             _cxr_line("287", "Legionella", "PA", "X-ray", "images", "q1.jpg"),
             _cxr_line("339", "COVID-19", "PA", "X-ray", "images", "p1.jpg", "second, listing"),
             _cxr_line("339", "COVID-19", "L", "X-ray", "images", "p3.png"),
             _cxr_line("340", "Legionella", "PA", "X-ray", "images", "q1.jpg"),
             _cxr_line("7", "No Finding", "PA", "X-ray", "images", "n1.png", extra="Credit to A., B."),
             _cxr_line("8", "COVID-19, ARDS", "Axial", "CT", "volumes", "v1.nii.gz"),
             _cxr_line("9", "Streptococcus", "PA", "X-ray", "images", "gone.jpg")]
    write(root / "metadata.csv", "\n".join(lines) + "\n")
    for name in ("p1.jpg", "p2.jpg", "q1.jpg", "p3.png", "n1.png"):
        png(root / "images" / name)
    return root


def covid_cxr_later(root: Path) -> Path:
    """The collection's later schema: 30 columns (RT_PCR_positive after finding, the unnamed last
    one), findings as paths (Pneumonia/Viral/COVID-19, ...)."""
    head = CXR_JUNE_2020.replace("finding,", "finding,RT_PCR_positive,", 1) + ","
    lines = [head,
             _cxr_line("2", "Pneumonia/Viral/COVID-19", "PA", "X-ray", "images", "a.jpg", pcr="Y"),
             _cxr_line("2", "Pneumonia/Viral/COVID-19", "AP Supine", "X-ray", "images", "b.jpg", pcr="Y"),
             _cxr_line("3", "Pneumonia/Viral/SARS", "PA", "X-ray", "images", "c.jpg", pcr=""),
             _cxr_line("4", "Pneumonia/Bacterial/Streptococcus", "PA", "X-ray", "images", "d.png", pcr=""),
             _cxr_line("5", "No Finding", "PA", "X-ray", "images", "e.png", pcr="N"),
             _cxr_line("6", "Pneumonia", "PA", "X-ray", "images", "f.png", pcr="")]
    write(root / "metadata.csv", "\n".join(lines) + "\n")
    for name in "abcdef":
        png(root / "images" / (f"{name}.jpg" if name in "abc" else f"{name}.png"))
    return root


def covid_ct_noncovid_table(root: Path, rows: dict[str, str]) -> Path:
    """COVID-CT's NonCOVID-CT-MetaInfo.csv as released: ``,image name,patient id``, the first
    column an unnamed running index (a pandas export)."""
    lines = [",image name,patient id"] + [f"{i},{name},{pid}" for i, (name, pid) in enumerate(rows.items())]
    return write(root / "NonCOVID-CT-MetaInfo.csv", "\n".join(lines) + "\n")


# --- TEM virus dataset, as released ("TEM virus dataset": context_virus_RAW, context_virus_1nm_256x256)

#: The raw part: (split folder, class, image, (H, W), dtype, Xscale, Yscale, objects). An object
#: is a list of (x, y) vertices: one point, a two-point line (patch at its midpoint), a centre line.
TEM_RAW = [
    ("train", "Adenovirus", "A4-080201_7.tif", (60, 80), np.uint16, "0,5", "0,5",
     [[(20, 10)], [(40.5, 30.25)], [(50, 40), (70, 44)]]),
    ("train", "Ebola", "E-1.tif", (40, 50), np.uint8, "2,0", "2,0",
     [[(5, 5), (20, 10), (40, 30)], [(45, 35)]]),
    ("validation", "Adenovirus", "B2-65k-071019_3.tif", (50, 50), np.uint16, "1,25", "1,25",
     [[(25, 20)]]),
    ("validation", "Ebola", "E-4.tif", (30, 40), np.uint8, "1", None, [[(12, 10), (28, 20)]]),
    ("test", "Adenovirus", "A4-080201_8.tif", (40, 40), np.uint16, "0,75", "0,75", [[(30, 30)]]),
    ("test", "Ebola", "E-9.tif", (32, 32), np.uint8, "0,867", "0,868", [[(10, 12)], [(20, 8)]]),
]


def tem_particle_text(objects, header=("Particle positions", "image", "x;y"), lead: bool = True) -> str:
    """A release particle file: three header lines, ``x;y`` per vertex, ``particleposition``
    between objects (and, with ``lead``, before the first)."""
    lines = list(header)
    for i, obj in enumerate(objects):
        if lead or i:
            lines.append("particleposition")
        lines += [f"{x};{y}" for x, y in obj]
    return "\n".join(lines) + "\n"


def tem_tag_text(shape, xscale: str, yscale: str | None, magnification: str = "73000") -> str:
    """A release tag file: ``key;value`` rows, decimal commas, Xscale/Yscale in nm per pixel."""
    rows = [f"Height;{shape[0]}", f"Width;{shape[1]}", "Date;19.10.2009", "Time;14:30:14",
            "Camera;Morada", f"Xscale;{xscale}"]
    rows += [f"Yscale;{yscale}"] if yscale is not None else []
    rows += ["AccVoltage;80000", "Defocus;-1,5", f"Magnification;{magnification}"]
    return "\n".join(rows) + "\n"


def tem_patch_centres(objects) -> list[tuple[float, float]]:
    """Where the paper puts patches: a point; a two-point line's midpoint; every other vertex."""
    out = []
    for obj in objects:
        if len(obj) == 2:
            out.append(((obj[0][0] + obj[1][0]) / 2, (obj[0][1] + obj[1][1]) / 2))
        else:
            out += [(float(x), float(y)) for x, y in obj]
    return out


def tem_raw_image(shape, dtype, objects) -> np.ndarray:
    """A flat image with a bright 3x3 spot at each patch centre (so a patch's centre is findable)."""
    hi = np.iinfo(dtype).max
    img = np.full(shape, hi // 6, dtype=dtype)
    for x, y in tem_patch_centres(objects):
        cx, cy = int(round(x)), int(round(y))
        img[max(cy - 1, 0):cy + 2, max(cx - 1, 0):cx + 2] = hi
    return img


def tem_release(root: Path, raw: bool = True, crops: bool = True) -> Path:
    """The release's root: ``context_virus_RAW`` (images, particle_positions/, tags/) and
    ``context_virus_1nm_256x256`` (crops ``<n>_<k>.tif``); see :func:`tem_crop_table`."""
    if raw:
        base = root / "context_virus_RAW"
        for i, (split, cls, name, shape, dtype, xs, ys, objects) in enumerate(TEM_RAW):
            folder = base / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            write_image(folder / name, tem_raw_image(shape, dtype, objects))
            stem = Path(name).stem
            write(folder / "particle_positions" / f"{stem}_particlepositions.txt",
                  tem_particle_text(objects, lead=i % 2 == 0))
            write(folder / "tags" / f"{name}_tags.csv", tem_tag_text(shape, xs, ys))
    if crops:
        for split, cls, name in TEM_CROPS:
            crop = np.full((256, 256), 60, dtype=np.uint8)
            crop[128, 128] = 255
            path = root / "context_virus_1nm_256x256" / split / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_image(path, crop)
    return root


#: The 1 nm part: (split folder, class, crop); ``<n>`` numbers the raw image in its folder.
TEM_CROPS = [("train", "Adenovirus", "1_1.tif"), ("train", "Adenovirus", "1_2.tif"),
             ("train", "Adenovirus", "2_1.tif"), ("validation", "Adenovirus", "1_1.tif"),
             ("test", "Ebola", "1_1.tif"), ("test", "Ebola", "1_2.tif")]
#: The raw image of each (split, class, n) in the crop table.
TEM_CROP_SOURCES = {("train", "Adenovirus", "1"): "A4-080201_7.tif",
                    ("train", "Adenovirus", "2"): "A4-080201_8.tif",
                    ("validation", "Adenovirus", "1"): "B2-65k-071019_3.tif",
                    ("test", "Ebola", "1"): "E-9.tif"}


def tem_crop_table(path: Path, crops=TEM_CROPS, split_of=None) -> Path:
    """A crop table in protocol_A_official.csv's columns (split ``split_of[(split, cls, name)]``)."""
    lines = ["filepath,filename,class_name,label_id,split,raw_source_id,G09_Date_Magnification,G14_RAWSource"]
    labels = sorted({c for _, c, _ in crops})
    for split, cls, name in crops:
        n = name.split("_")[0]
        src = f"{split}/{cls}/{TEM_CROP_SOURCES[(split, cls, n)]}"
        listed = (split_of or {}).get((split, cls, name), split)
        lines.append(f"/content/tem/TEM virus dataset/context_virus_1nm_256x256/{split}/{cls}/{name},"
                     f"{name},{cls},{labels.index(cls)},{listed},{src},2009-10-19 14:30:14 | 73000,{src}")
    return write(path, "\n".join(lines) + "\n")


#: Crops others cut from the raw part (the shared tem-crops): ``<Virus>/<raw image>_<k>.png``.
TEM_PNG_CROPS = [("Adenovirus", "A4-080201_14_0.png"), ("Adenovirus", "A4-080201_14_1.png"),
                 ("Adenovirus", "B2-65k-071019_18_3.png"), ("Nipah virus", "N1_0.png")]


def tem_png_crops(root: Path) -> Path:
    for cls, name in TEM_PNG_CROPS:
        png(root / cls / name, value=90, shape=(256, 256))
    return root
