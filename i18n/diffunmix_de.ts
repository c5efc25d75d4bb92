<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de_DE">
<context>
    <name>AbundanceStyler</name>
    <message>
        <location filename="../plugin/styling.py" line="259"/>
        <source>RGB: {r} / {g} / {b}</source>
        <translation>RGB: {r} / {g} / {b}</translation>
    </message>
</context>
<context>
    <name>ApplyAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/apply.py" line="27"/>
        <source>Model</source>
        <translation>Modell</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/apply.py" line="40"/>
        <source>Apply unmixing model</source>
        <translation>Entmischungsmodell anwenden</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/apply.py" line="43"/>
        <source>hyperspectral,unmixing,model,batch,checkpoint,abundance</source>
        <translation>hyperspektral,Entmischung,Modell,Stapelverarbeitung,Checkpoint,Abundanz</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/apply.py" line="21"/>
        <source>Unmixes a raster with a saved model (written by &apos;Train unmixing model&apos;) instead of fitting the engine again: fast, and the same endmembers for every raster. Made for the batch dialog: one row per raster of the same sensor. Needs PyTorch.</source>
        <translation>Entmischt ein Raster mit einem gespeicherten Modell (geschrieben von „Entmischungsmodell trainieren“), statt die Engine erneut anzupassen: schnell und mit denselben Endmembern für jedes Raster. Gedacht für den Stapelverarbeitungsdialog: eine Zeile pro Raster desselben Sensors. Benötigt PyTorch.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/apply.py" line="27"/>
        <source>Model file (.pt) written by &apos;Train unmixing model&apos;. The raster must have the bands the model was trained on (the same band subset).</source>
        <translation>Modelldatei (.pt), geschrieben von „Entmischungsmodell trainieren“. Das Raster muss die Bänder haben, mit denen das Modell trainiert wurde (dieselbe Bandauswahl).</translation>
    </message>
</context>
<context>
    <name>DiffUnmix</name>
    <message>
        <location filename="../plugin/compat.py" line="40"/>
        <source>The full DiffUnmix engine needs PyTorch, which QGIS's Python cannot import. Install it with Raster ▸ DiffUnmix ▸ Install Dependencies… (torch=={version} for QGIS's own Python, no restart needed). The classical method 'VCA + FCLS' works without PyTorch.</source>
        <translation>Die vollständige DiffUnmix-Engine benötigt PyTorch, das QGIS' Python nicht importieren kann. Installieren Sie es mit Raster ▸ DiffUnmix ▸ Abhängigkeiten installieren… (torch=={version} für QGIS' eigenes Python, ohne Neustart). Die klassische Methode „VCA + FCLS“ funktioniert ohne PyTorch.</translation>
    </message>
</context>
<context>
    <name>DiffUnmixAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/base.py" line="53"/>
        <source>Automatic (CUDA GPU when available)</source>
        <translation>Automatisch (CUDA-GPU, wenn vorhanden)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="53"/>
        <source>CPU</source>
        <translation>CPU (Prozessor)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="53"/>
        <source>CUDA GPU</source>
        <translation>CUDA-GPU</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="59"/>
        <source>Fast</source>
        <translation>Schnell</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="59"/>
        <source>Default</source>
        <translation>Standard</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="59"/>
        <source>Best (slow)</source>
        <translation>Beste (langsam)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="66"/>
        <source>Unmixing</source>
        <translation>Entmischung</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="67"/>
        <source>Endmembers</source>
        <translation>Endmember</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="68"/>
        <source>Evaluation</source>
        <translation>Bewertung</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="73"/>
        <source>Hyperspectral raster</source>
        <translation>Hyperspektrales Raster</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="81"/>
        <source>Spectral library</source>
        <translation>Spektralbibliothek</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="89"/>
        <source>Band subset</source>
        <translation>Bandauswahl</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="95"/>
        <source>Device</source>
        <translation>Rechengerät</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="101"/>
        <source>Quality</source>
        <translation>Qualität</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="108"/>
        <source>Random seed</source>
        <translation>Zufallsstartwert</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="108"/>
        <source>The same seed and inputs give the same result.</source>
        <translation>Derselbe Startwert und dieselben Eingaben ergeben dasselbe Ergebnis.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="112"/>
        <source>RGB composite of endmembers</source>
        <translation>RGB-Komposit aus Endmembern</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="119"/>
        <source>Abundances</source>
        <translation>Abundanzen</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="128"/>
        <source>Endmember spectra</source>
        <translation>Endmember-Spektren</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="135"/>
        <source>Endmember plot</source>
        <translation>Endmember-Diagramm</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="457"/>
        <source>Reconstruction error</source>
        <translation>Rekonstruktionsfehler</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="164"/>
        <source>Report</source>
        <translation>Bericht</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="164"/>
        <source>Optional JSON report: parameters, timings and diagnostics.</source>
        <translation>Optionaler JSON-Bericht: Parameter, Laufzeiten und Diagnosen.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="176"/>
        <source>Number of endmembers</source>
        <translation>Anzahl der Endmember</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="177"/>
        <source>Endmember names (comma-separated)</source>
        <translation>Endmember-Namen (kommagetrennt)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="200"/>
        <source>Layer '{name}' ({param}) is not a raster file (provider '{provider}'). Save it as a GeoTIFF first (Export ▸ Save As…).</source>
        <translation>Der Layer „{name}“ ({param}) ist keine Rasterdatei (Datenanbieter „{provider}“). Speichern Sie ihn zuerst als GeoTIFF (Exportieren ▸ Speichern als…).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="311"/>
        <source>Spectral libraries (*.csv *.sli *.hdr);;All files (*.*)</source>
        <translation>Spektralbibliotheken (*.csv *.sli *.hdr);;Alle Dateien (*.*)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="326"/>
        <source>CSV files (*.csv)</source>
        <translation>CSV-Dateien (*.csv)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="338"/>
        <source>PNG images (*.png)</source>
        <translation>PNG-Bilder (*.png)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="346"/>
        <source>JSON files (*.json)</source>
        <translation>JSON-Dateien (*.json)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="362"/>
        <source>The raster &apos;{param}&apos; could not be loaded: {value}</source>
        <translation>Das Raster „{param}“ konnte nicht geladen werden: {value}</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="396"/>
        <source>{param}: rasters are written as GeoTIFF; give a .tif file name, not {path}.</source>
        <translation>{param}: Raster werden als GeoTIFF geschrieben; geben Sie einen .tif-Dateinamen an, nicht {path}.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="412"/>
        <source>RGB_ENDMEMBERS must be three endmember numbers such as &apos;1,2,3&apos;, not &apos;{value}&apos;.</source>
        <translation>RGB_ENDMEMBERS muss aus drei Endmember-Nummern wie „1,2,3“ bestehen, nicht „{value}“.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="431"/>
        <source>Cancelled by the user.</source>
        <translation>Vom Benutzer abgebrochen.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="447"/>
        <source>RGB_ENDMEMBERS {rgb}: there are only {p} endmembers; no RGB composite.</source>
        <translation>RGB_ENDMEMBERS {rgb}: Es gibt nur {p} Endmember; kein RGB-Komposit.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="73"/>
        <source>Raster file with one band per wavelength (GeoTIFF, ENVI or any format GDAL reads), e.g. reflectance. Pixels with nodata in any band and bands flagged bad (ENVI bbl) are skipped. The layer must be stored in a file.</source>
        <translation>Rasterdatei mit einem Band pro Wellenlänge (GeoTIFF, ENVI oder jedes Format, das GDAL liest), z. B. Reflexion. Pixel mit NoData in einem Band und als schlecht markierte Bänder (ENVI bbl) werden übersprungen. Der Layer muss in einer Datei gespeichert sein.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="81"/>
        <source>Optional library of reference spectra (ENVI .sli/.hdr, or CSV with a wavelength column and one column per spectrum), resampled to the raster&apos;s wavelengths. It names the endmembers after their closest library spectra (and guides the endmember search).</source>
        <translation>Optionale Bibliothek von Referenzspektren (ENVI .sli/.hdr oder CSV mit einer Wellenlängenspalte und einer Spalte pro Spektrum), auf die Wellenlängen des Rasters umgerechnet. Sie benennt die Endmember nach den ähnlichsten Bibliotheksspektren (und lenkt die Endmember-Suche).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="89"/>
        <source>Optional 1-based bands to use, e.g. &apos;1-50,60,70-90&apos;. Empty: every band not flagged bad.</source>
        <translation>Optionale zu verwendende Bänder (ab 1 gezählt), z. B. „1-50,60,70-90“. Leer: alle Bänder, die nicht als schlecht markiert sind.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="95"/>
        <source>Where the deep engine runs. Automatic uses a CUDA GPU when one is available, else the CPU.</source>
        <translation>Wo die Deep-Learning-Engine rechnet. Automatisch nutzt eine CUDA-GPU, wenn eine vorhanden ist, sonst den Prozessor.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="101"/>
        <source>How long the deep engine trains and refines: Fast (a few minutes on a CPU for a small scene), Default, or Best (several times slower).</source>
        <translation>Wie lange die Deep-Learning-Engine trainiert und verfeinert: Schnell (einige Minuten auf einem Prozessor für eine kleine Szene), Standard oder Beste (um ein Mehrfaches langsamer).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="112"/>
        <source>Optional three 1-based endmember numbers, e.g. &apos;1,2,3&apos;: when the result is opened in the map, an extra layer shows their abundances as red, green and blue. Empty: none.</source>
        <translation>Optional drei Endmember-Nummern (ab 1 gezählt), z. B. „1,2,3“: Wird das Ergebnis in der Karte geöffnet, zeigt ein zusätzlicher Layer ihre Abundanzen als Rot, Grün und Blau. Leer: keiner.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="119"/>
        <source>GeoTIFF with one Float32 band per endmember (band descriptions are the endmember names): fractions in [0, 1] that sum to one, on the input&apos;s grid, nodata where the input had no valid value. Opened in the map as one layer per endmember (colour ramp 0-1) in a group named after the input.</source>
        <translation>GeoTIFF mit einem Float32-Band pro Endmember (die Bandbeschreibungen sind die Endmember-Namen): Anteile in [0, 1], die sich zu eins summieren, im Raster der Eingabe, NoData wo die Eingabe keinen gültigen Wert hatte. Wird in der Karte als ein Layer pro Endmember (Farbverlauf 0–1) in einer nach der Eingabe benannten Gruppe geöffnet.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="128"/>
        <source>CSV: first column wavelength_nm (or band when the raster has no wavelengths), then one column per endmember, in the order of the abundance bands.</source>
        <translation>CSV: erste Spalte wavelength_nm (oder band, wenn das Raster keine Wellenlängen hat), dann eine Spalte pro Endmember in der Reihenfolge der Abundanzbänder.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="135"/>
        <source>Optional PNG plot of the endmember spectra (wavelength in nm, one line per endmember; matched library spectra dashed).</source>
        <translation>Optionales PNG-Diagramm der Endmember-Spektren (Wellenlänge in nm, eine Linie pro Endmember; zugeordnete Bibliotheksspektren gestrichelt).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="142"/>
        <source>Optional one-band GeoTIFF: per-pixel RMSE between the pixel spectrum and its reconstruction from the abundances and endmembers (high values: poorly explained pixels).</source>
        <translation>Optionales einbändiges GeoTIFF: RMSE je Pixel zwischen dem Pixelspektrum und seiner Rekonstruktion aus Abundanzen und Endmembern (hohe Werte: schlecht erklärte Pixel).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="149"/>
        <source>Abundance uncertainty</source>
        <translation>Unsicherheit der Anteile</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="149"/>
        <source>Optional GeoTIFF, one band per endmember: the per-pixel standard deviation of each abundance over several stochastic diffusion refinements (full engine only). High values mark pixels where the data allow several answers.</source>
        <translation>Optionales GeoTIFF, ein Band je Endmember: die Standardabweichung jedes Anteils pro Pixel über mehrere stochastische Diffusionsverfeinerungen (nur vollständige Engine). Hohe Werte kennzeichnen Pixel, bei denen die Daten mehrere Antworten zulassen.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="157"/>
        <source>Uncertainty samples</source>
        <translation>Stichproben für die Unsicherheit</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="157"/>
        <source>How many stochastic refinements the abundance uncertainty is computed from (at least 2; each adds about one inference pass). Used only when the uncertainty output is set.</source>
        <translation>Aus wie vielen stochastischen Verfeinerungen die Unsicherheit der Anteile berechnet wird (mindestens 2; jede kostet etwa einen weiteren Inferenzdurchlauf). Wird nur verwendet, wenn die Unsicherheitsausgabe gesetzt ist.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="458"/>
        <source>{name} (uncertainty)</source>
        <translation>{name} (Unsicherheit)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="453"/>
        <source>Unmixing result</source>
        <translation>Entmischungsergebnis</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="178"/>
        <source>saved model</source>
        <translation>gespeichertes Modell</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="178"/>
        <source>full engine</source>
        <translation>vollständige Engine</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="181"/>
        <source>{method}, {p} endmembers</source>
        <translation>{method}, {p} Endmember</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="168"/>
        <source>Dask scheduler</source>
        <translation>Dask-Scheduler</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/base.py" line="168"/>
        <source>Optional: run the tiles on a Dask cluster. &apos;local&apos; or &apos;local:N&apos; starts N worker processes on this computer; &apos;tcp://HOST:PORT&apos; uses an existing Dask scheduler (its workers must see the same files). Empty: everything runs in QGIS. Needs the dask and distributed Python packages.</source>
        <translation>Optional: die Kacheln auf einem Dask-Cluster rechnen. 'local' oder 'local:N' startet N Worker-Prozesse auf diesem Computer; 'tcp://HOST:PORT' nutzt einen vorhandenen Dask-Scheduler (seine Worker müssen dieselben Dateien sehen). Leer: alles läuft in QGIS. Benötigt die Python-Pakete dask und distributed.</translation>
    </message>
</context>
<context>
    <name>DiffUnmixPlugin</name>
    <message>
        <location filename="../plugin/plugin.py" line="52"/>
        <source>&amp;DiffUnmix</source>
        <translation>&amp;DiffUnmix</translation>
    </message>
    <message>
        <location filename="../plugin/plugin.py" line="90"/>
        <source>DiffUnmix</source>
        <translation>DiffUnmix</translation>
    </message>
    <message>
        <location filename="../plugin/plugin.py" line="92"/>
        <source>Unmix Hyperspectral Raster…</source>
        <translation>Hyperspektrales Raster entmischen…</translation>
    </message>
    <message>
        <location filename="../plugin/plugin.py" line="92"/>
        <source>Estimate endmember spectra and abundance maps</source>
        <translation>Endmember-Spektren und Abundanzkarten schätzen</translation>
    </message>
    <message>
        <location filename="../plugin/plugin.py" line="94"/>
        <source>Endmember Spectra</source>
        <translation>Endmember-Spektren</translation>
    </message>
    <message>
        <location filename="../plugin/plugin.py" line="94"/>
        <source>Show the endmember spectra of the latest result</source>
        <translation>Die Endmember-Spektren des letzten Ergebnisses anzeigen</translation>
    </message>
    <message>
        <location filename="../plugin/plugin.py" line="99"/>
        <source>Install Dependencies…</source>
        <translation>Abhängigkeiten installieren…</translation>
    </message>
    <message>
        <location filename="../plugin/plugin.py" line="99"/>
        <source>Install PyTorch for the full DiffUnmix engine</source>
        <translation>PyTorch für die vollständige DiffUnmix-Engine installieren</translation>
    </message>
    <message>
        <location filename="../plugin/plugin.py" line="247"/>
        <source>PyTorch is installed: the full engine is available</source>
        <translation>PyTorch ist installiert: die vollständige Engine ist verfügbar</translation>
    </message>
</context>
<context>
    <name>DiffUnmixProvider</name>
    <message>
        <location filename="../plugin/provider.py" line="68"/>
        <source>DiffUnmix</source>
        <translation>DiffUnmix</translation>
    </message>
</context>
<context>
    <name>EstimateCountAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/estimatecount.py" line="25"/>
        <source>Estimated number of endmembers</source>
        <translation>Geschätzte Anzahl der Endmember</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/estimatecount.py" line="26"/>
        <source>Number of bands used</source>
        <translation>Anzahl verwendeter Bänder</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/estimatecount.py" line="33"/>
        <source>Estimate number of endmembers</source>
        <translation>Anzahl der Endmember schätzen</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/estimatecount.py" line="36"/>
        <source>hyperspectral,endmember,hysime,count,subspace</source>
        <translation>hyperspektral,Endmember,HySime,Anzahl,Unterraum</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/estimatecount.py" line="51"/>
        <source>Estimated number of endmembers: {count}</source>
        <translation>Geschätzte Anzahl der Endmember: {count}</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/estimatecount.py" line="19"/>
        <source>Estimates how many endmembers (materials) a hyperspectral raster holds with HySime (signal subspace identification from the noise and signal correlation). The number is an output that the graphical modeler can pass to &apos;Unmix hyperspectral raster&apos; or &apos;Extract endmembers&apos;.</source>
        <translation>Schätzt mit HySime (Bestimmung des Signalunterraums aus Rausch- und Signalkorrelation), wie viele Endmember (Materialien) ein hyperspektrales Raster enthält. Die Zahl ist eine Ausgabe, die die grafische Modellierung an „Hyperspektrales Raster entmischen“ oder „Endmember extrahieren“ weitergeben kann.</translation>
    </message>
</context>
<context>
    <name>EvaluateAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="40"/>
        <source>Estimated abundances</source>
        <translation>Geschätzte Abundanzen</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="40"/>
        <source>Abundance raster to score (one band per endmember).</source>
        <translation>Zu bewertendes Abundanzraster (ein Band pro Endmember).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="42"/>
        <source>Reference abundances</source>
        <translation>Referenzabundanzen</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="42"/>
        <source>Known abundances on the same grid, one band per endmember.</source>
        <translation>Bekannte Abundanzen im selben Raster, ein Band pro Endmember.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="46"/>
        <source>Estimated endmembers (CSV)</source>
        <translation>Geschätzte Endmember (CSV)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="46"/>
        <source>Endmember CSV to score.</source>
        <translation>Zu bewertende Endmember-CSV.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="48"/>
        <source>Reference endmembers (CSV)</source>
        <translation>Referenz-Endmember (CSV)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="48"/>
        <source>Known endmember spectra, same bands as the estimated ones.</source>
        <translation>Bekannte Endmember-Spektren mit denselben Bändern wie die geschätzten.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="52"/>
        <source>Input raster (for the reconstruction error)</source>
        <translation>Eingaberaster (für den Rekonstruktionsfehler)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="52"/>
        <source>Optional: the unmixed raster, to score how well abundances × endmembers reconstruct it (RMSE, PSNR).</source>
        <translation>Optional: das entmischte Raster, um zu bewerten, wie gut Abundanzen × Endmember es rekonstruieren (RMSE, PSNR).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="58"/>
        <source>Report</source>
        <translation>Bericht</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="58"/>
        <source>The scores as JSON, or as an HTML table when the file name ends in .html.</source>
        <translation>Die Bewertungen als JSON oder als HTML-Tabelle, wenn der Dateiname auf .html endet.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="63"/>
        <source>Abundance RMSE</source>
        <translation>Abundanz-RMSE</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="64"/>
        <source>Mean spectral angle (rad)</source>
        <translation>Mittlerer Spektralwinkel (rad)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="65"/>
        <source>Reconstruction RMSE</source>
        <translation>Rekonstruktions-RMSE</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="66"/>
        <source>Reconstruction PSNR (dB)</source>
        <translation>Rekonstruktions-PSNR (dB)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="73"/>
        <source>Evaluate unmixing result</source>
        <translation>Entmischungsergebnis bewerten</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="76"/>
        <source>hyperspectral,unmixing,evaluation,rmse,sad,psnr,accuracy</source>
        <translation>hyperspektral,Entmischung,Bewertung,RMSE,SAD,PSNR,Genauigkeit</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="86"/>
        <source>JSON files (*.json);;HTML files (*.html)</source>
        <translation>JSON-Dateien (*.json);;HTML-Dateien (*.html)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="33"/>
        <source>Scores an unmixing result against a reference: endmembers are matched one to one (Hungarian method), then the abundance RMSE (aRMSE), the mean spectral angle (SAD, radians) and, with the input raster, the reconstruction RMSE and PSNR. Give abundances with reference abundances and/or endmembers with reference endmembers.</source>
        <translation>Bewertet ein Entmischungsergebnis anhand einer Referenz: Die Endmember werden einander eindeutig zugeordnet (Ungarische Methode), dann werden der Abundanz-RMSE (aRMSE), der mittlere Spektralwinkel (SAD, Radiant) und, mit dem Eingaberaster, der Rekonstruktions-RMSE und -PSNR berechnet. Geben Sie Abundanzen mit Referenzabundanzen und/oder Endmember mit Referenz-Endmembern an.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/evaluate.py" line="104"/>
        <source>Nothing to compare: give ABUNDANCES with REFERENCE_ABUNDANCES, ENDMEMBERS_CSV with REFERENCE_ENDMEMBERS_CSV, or ABUNDANCES and ENDMEMBERS_CSV with INPUT (reconstruction error).</source>
        <translation>Nichts zu vergleichen: ABUNDANCES mit REFERENCE_ABUNDANCES, ENDMEMBERS_CSV mit REFERENCE_ENDMEMBERS_CSV oder ABUNDANCES und ENDMEMBERS_CSV mit INPUT (Rekonstruktionsfehler) angeben.</translation>
    </message>
</context>
<context>
    <name>ExtractEndmembersAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="24"/>
        <source>VCA (from the data)</source>
        <translation>VCA (aus den Daten)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="24"/>
        <source>Library-guided (choose library spectra)</source>
        <translation>Bibliotheksgestützt (Bibliotheksspektren auswählen)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="36"/>
        <source>Number of endmembers (0 = estimate)</source>
        <translation>Anzahl der Endmember (0 = schätzen)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="36"/>
        <source>How many spectra to extract; 0 estimates the number (HySime).</source>
        <translation>Wie viele Spektren extrahiert werden; 0 schätzt die Anzahl (HySime).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="41"/>
        <source>Method</source>
        <translation>Methode</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="51"/>
        <source>Endmember spectra</source>
        <translation>Endmember-Spektren</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="63"/>
        <source>Extract endmembers</source>
        <translation>Endmember extrahieren</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="66"/>
        <source>hyperspectral,endmember,vca,library,spectra,extraction</source>
        <translation>hyperspektral,Endmember,VCA,Bibliothek,Spektren,Extraktion</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="30"/>
        <source>Extracts endmember spectra from a hyperspectral raster with vertex component analysis (VCA), or chooses the library spectra that best explain it, and writes them to a CSV that &apos;Abundances for given endmembers (FCLS)&apos; reads.</source>
        <translation>Extrahiert Endmember-Spektren aus einem hyperspektralen Raster mit der Vertex Component Analysis (VCA) oder wählt die Bibliotheksspektren, die es am besten erklären, und schreibt sie in eine CSV, die „Abundanzen für gegebene Endmember (FCLS)“ liest.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="51"/>
        <source>CSV: first column wavelength_nm (or band), then one column per endmember.</source>
        <translation>CSV: erste Spalte wavelength_nm (oder band), dann eine Spalte pro Endmember.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="88"/>
        <source>The library-guided METHOD needs a spectral LIBRARY.</source>
        <translation>Die bibliotheksgestützte METHOD benötigt eine Spektralbibliothek (LIBRARY).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="24"/>
        <source>Noise-robust (denoised VCA, minimum volume or representative spectra)</source>
        <translation>Rauschrobust (entrauschtes VCA, minimales Volumen oder repräsentative Spektren)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/extractendmembers.py" line="41"/>
        <source>VCA: the purest pixels&apos; spectra, named after the closest library spectra when a library is given. Library-guided: library spectra chosen to explain the data (needs a library). Noise-robust: the full engine&apos;s start, slower and more accurate: VCA on spatially denoised pixels, then the smallest simplex that holds the data (endmembers no pixel shows pure), or, when the materials vary within the scene, the mean spectrum of each material&apos;s core.</source>
        <translation>VCA: die Spektren der reinsten Pixel, benannt nach den ähnlichsten Bibliotheksspektren, wenn eine Bibliothek angegeben ist. Bibliotheksgestützt: Bibliotheksspektren, die die Daten am besten erklären (benötigt eine Bibliothek). Rauschrobust: der Start der vollständigen Engine, langsamer und genauer: VCA auf räumlich entrauschten Pixeln, dann das kleinste Simplex, das die Daten enthält (Endmember, die kein Pixel rein zeigt), oder, wenn die Materialien innerhalb der Szene variieren, das mittlere Spektrum des Kerns jedes Materials.</translation>
    </message>
</context>
<context>
    <name>FclsAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/fcls.py" line="28"/>
        <source>Endmember spectra (CSV)</source>
        <translation>Endmember-Spektren (CSV)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/fcls.py" line="42"/>
        <source>Abundances for given endmembers (FCLS)</source>
        <translation>Abundanzen für gegebene Endmember (FCLS)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/fcls.py" line="45"/>
        <source>hyperspectral,abundance,fcls,least squares,baseline</source>
        <translation>hyperspektral,Abundanz,FCLS,kleinste Quadrate,Referenzverfahren</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/fcls.py" line="22"/>
        <source>Computes one abundance map per given endmember with fully constrained least squares (FCLS): non-negative fractions summing to one that best reconstruct each pixel. The classical baseline; fast, no PyTorch needed.</source>
        <translation>Berechnet eine Abundanzkarte pro gegebenem Endmember mit vollständig beschränkten kleinsten Quadraten (FCLS): nichtnegative Anteile mit Summe eins, die jedes Pixel am besten rekonstruieren. Das klassische Referenzverfahren; schnell, ohne PyTorch.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/fcls.py" line="28"/>
        <source>CSV as written by &apos;Extract endmembers&apos; or &apos;Unmix hyperspectral raster&apos;: a wavelength_nm (or band) column and one column per endmember; resampled by wavelength when its bands differ from the raster&apos;s.</source>
        <translation>CSV, wie sie „Endmember extrahieren“ oder „Hyperspektrales Raster entmischen“ schreibt: eine Spalte wavelength_nm (oder band) und eine Spalte pro Endmember; nach Wellenlänge umgerechnet, wenn ihre Bänder von denen des Rasters abweichen.</translation>
    </message>
</context>
<context>
    <name>Installer</name>
    <message>
        <location filename="../plugin/installer.py" line="134"/>
        <source>QGIS&apos;s Python has no pip. On Debian or Ubuntu install it with &apos;sudo apt install python3-pip&apos;; on Windows, run the OSGeo4W installer and add &apos;python3-pip&apos;. Then try again.</source>
        <translation>QGIS' Python hat kein pip. Unter Debian oder Ubuntu installieren Sie es mit 'sudo apt install python3-pip'; unter Windows starten Sie den OSGeo4W-Installer und wählen 'python3-pip'. Versuchen Sie es dann erneut.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="139"/>
        <source>pip could not reach the package index: check the network connection (or set a proxy in pip&apos;s configuration) and try again.</source>
        <translation>pip konnte den Paketindex nicht erreichen: Prüfen Sie die Netzwerkverbindung (oder tragen Sie einen Proxy in pips Konfiguration ein) und versuchen Sie es erneut.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="142"/>
        <source>pip found no matching package for this Python and platform (or could not reach the package index). See the log for details.</source>
        <translation>pip fand kein passendes Paket für dieses Python und diese Plattform (oder erreichte den Paketindex nicht). Einzelheiten stehen im Protokoll.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="145"/>
        <source>The installation failed (pip exit code {code}): {line}</source>
        <translation>Die Installation ist fehlgeschlagen (pip-Exit-Code {code}): {line}</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="162"/>
        <source>DiffUnmix: install dependencies</source>
        <translation>DiffUnmix: Abhängigkeiten installieren</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="181"/>
        <source>pip&apos;s output appears here.</source>
        <translation>Hier erscheint die Ausgabe von pip.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="183"/>
        <source>Install</source>
        <translation>Installieren</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="197"/>
        <source>CUDA build</source>
        <translation>CUDA-Version</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="197"/>
        <source>CPU build</source>
        <translation>CPU-Version</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="203"/>
        <source>PyTorch is installed: the full engine is available.</source>
        <translation>PyTorch ist installiert: die vollständige Engine ist verfügbar.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="203"/>
        <source>PyTorch is not installed: only the classical method (VCA + FCLS) and the endmember tools work.</source>
        <translation>PyTorch ist nicht installiert: nur die klassische Methode (VCA + FCLS) und die Endmember-Werkzeuge funktionieren.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="207"/>
        <source>QGIS&apos;s Python interpreter was not found under {prefix}, so nothing can be installed from here.</source>
        <translation>QGIS' Python-Interpreter wurde unter {prefix} nicht gefunden; von hier aus kann nichts installiert werden.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="210"/>
        <source>Install installs {what} for QGIS&apos;s Python ({python}) into {target} with pip. The full engine is available as soon as it finishes, without a restart.</source>
        <translation>„Installieren“ installiert {what} für QGIS' Python ({python}) mit pip nach {target}. Die vollständige Engine ist verfügbar, sobald es fertig ist, ohne Neustart.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="247"/>
        <source>QGIS&apos;s Python ({python}) could not be started.</source>
        <translation>QGIS' Python ({python}) konnte nicht gestartet werden.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="254"/>
        <source>Installed. The full engine is available now (no restart needed).</source>
        <translation>Installiert. Die vollständige Engine ist jetzt verfügbar (kein Neustart nötig).</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="262"/>
        <source>pip finished but PyTorch still cannot be imported; see the log.</source>
        <translation>pip ist fertig, aber PyTorch lässt sich noch nicht importieren; siehe Protokoll.</translation>
    </message>
    <message>
        <location filename="../plugin/installer.py" line="254"/>
        <source>Installed {what}: it imports now (no restart needed).</source>
        <translation>{what} installiert: es lässt sich jetzt importieren (kein Neustart nötig).</translation>
    </message>
</context>
<context>
    <name>QualityWidgetWrapper</name>
    <message>
        <location filename="../plugin/widgets.py" line="55"/>
        <source>VCA + FCLS has no quality setting: it runs in seconds.</source>
        <translation>VCA + FCLS hat keine Qualitätsstufe: es läuft in Sekunden.</translation>
    </message>
</context>
<context>
    <name>RunLog</name>
    <message>
        <location filename="../plugin/feedback.py" line="41"/>
        <source>endmember estimation</source>
        <translation>Endmember-Schätzung</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="41"/>
        <source>fitting the engine to the scene</source>
        <translation>Anpassung der Engine an die Szene</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="41"/>
        <source>endmember calibration</source>
        <translation>Endmember-Kalibrierung</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="41"/>
        <source>abundances (FCLS)</source>
        <translation>Abundanzen (FCLS)</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="41"/>
        <source>abundance inference</source>
        <translation>Abundanz-Inferenz</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="49"/>
        <source>full engine (HybridSTU + diffusion)</source>
        <translation>vollständige Engine (HybridSTU + Diffusion)</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="50"/>
        <source>VCA + FCLS (classical)</source>
        <translation>VCA + FCLS (klassisch)</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="51"/>
        <source>saved model</source>
        <translation>gespeichertes Modell</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="88"/>
        <source>estimated by HySime</source>
        <translation>von HySime geschätzt</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="88"/>
        <source>as requested</source>
        <translation>wie angegeben</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="90"/>
        <source>Method: {method}; {count} endmembers ({how}).</source>
        <translation>Methode: {method}; {count} Endmember ({how}).</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="106"/>
        <source>{name}: used (it lowered the error in validation)</source>
        <translation>{name}: verwendet (sie senkte den Fehler in der Validierung)</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="99"/>
        <source>{name}: skipped (it did not lower the error in validation)</source>
        <translation>{name}: übersprungen (sie senkte den Fehler in der Validierung nicht)</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="108"/>
        <source>CNN correction</source>
        <translation>CNN-Korrektur</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="108"/>
        <source>diffusion refinement</source>
        <translation>Diffusionsverfeinerung</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="113"/>
        <source>Time: {parts} (total {total}).</source>
        <translation>Zeit: {parts} (insgesamt {total}).</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="117"/>
        <source>Reconstruction error: mean RMSE {rmse:.3g} per pixel (in the raster&apos;s units).</source>
        <translation>Rekonstruktionsfehler: mittlerer RMSE {rmse:.3g} pro Pixel (in den Einheiten des Rasters).</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="120"/>
        <source>Every number of the run is in the report: {path}</source>
        <translation>Alle Zahlen des Laufs stehen im Bericht: {path}</translation>
    </message>
    <message>
        <location filename="../plugin/feedback.py" line="103"/>
        <source>{name}: used at weight {weight} (blended with the stage before it: that lowered the error in validation)</source>
        <translation>{name}: mit Gewicht {weight} verwendet (mit der Stufe davor gemischt: das senkte den Fehler in der Validierung)</translation>
    </message>
</context>
<context>
    <name>SpectraDock</name>
    <message>
        <location filename="../plugin/spectra_dock.py" line="54"/>
        <source>DiffUnmix Endmember Spectra</source>
        <translation>DiffUnmix Endmember-Spektren</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="69"/>
        <source>Open CSV…</source>
        <translation>CSV öffnen…</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="70"/>
        <source>Plot an endmember CSV (wavelength_nm or band, one column per endmember)</source>
        <translation>Eine Endmember-CSV darstellen (wavelength_nm oder band, eine Spalte pro Endmember)</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="112"/>
        <source>Run a DiffUnmix algorithm or open an endmember CSV</source>
        <translation>Führen Sie einen DiffUnmix-Algorithmus aus oder öffnen Sie eine Endmember-CSV</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="134"/>
        <source>library</source>
        <translation>Bibliothek</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="135"/>
        <source>{name} (library)</source>
        <translation>{name} (Bibliothek)</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="137"/>
        <source>Wavelength (nm)</source>
        <translation>Wellenlänge (nm)</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="137"/>
        <source>Band</source>
        <translation>Band</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="138"/>
        <source>Reflectance</source>
        <translation>Reflexion</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="300"/>
        <source>Open endmember CSV</source>
        <translation>Endmember-CSV öffnen</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="300"/>
        <source>CSV files (*.csv);;All files (*.*)</source>
        <translation>CSV-Dateien (*.csv);;Alle Dateien (*.*)</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="307"/>
        <source>Cannot plot {path}: {error}</source>
        <translation>{path} kann nicht dargestellt werden: {error}</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="67"/>
        <source>Results of this session, newest first</source>
        <translation>Ergebnisse dieser Sitzung, neueste zuerst</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="73"/>
        <source>Export…</source>
        <translation>Exportieren…</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="74"/>
        <source>Save the plot as PNG or the spectra as CSV</source>
        <translation>Diagramm als PNG oder Spektren als CSV speichern</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="79"/>
        <source>Click an entry to hide or show its curve</source>
        <translation>Eintrag anklicken, um seine Kurve aus- oder einzublenden</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="269"/>
        <source>Nothing to export: no spectra are shown.</source>
        <translation>Nichts zu exportieren: es werden keine Spektren angezeigt.</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="283"/>
        <source>Export as .png or .csv, not {ext}</source>
        <translation>Als .png oder .csv exportieren, nicht {ext}</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="287"/>
        <source>Export endmember spectra</source>
        <translation>Endmember-Spektren exportieren</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="287"/>
        <source>PNG image (*.png);;CSV file (*.csv)</source>
        <translation>PNG-Bild (*.png);;CSV-Datei (*.csv)</translation>
    </message>
    <message>
        <location filename="../plugin/spectra_dock.py" line="293"/>
        <source>Cannot export to {path}: {error}</source>
        <translation>Export nach {path} nicht möglich: {error}</translation>
    </message>
</context>
<context>
    <name>SynthesizeAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="34"/>
        <source>Gaussian random fields</source>
        <translation>Gaußsche Zufallsfelder</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="34"/>
        <source>Legendre polynomials</source>
        <translation>Legendre-Polynome</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="34"/>
        <source>Mosaic (patches with soft edges)</source>
        <translation>Mosaik (Flächen mit weichen Rändern)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="46"/>
        <source>Height (pixels)</source>
        <translation>Höhe (Pixel)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="46"/>
        <source>Number of rows of the scene.</source>
        <translation>Anzahl der Zeilen der Szene.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="48"/>
        <source>Width (pixels)</source>
        <translation>Breite (Pixel)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="48"/>
        <source>Number of columns of the scene.</source>
        <translation>Anzahl der Spalten der Szene.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="50"/>
        <source>Number of endmembers</source>
        <translation>Anzahl der Endmember</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="50"/>
        <source>How many library spectra to mix (at least 2, at least 10° apart).</source>
        <translation>Wie viele Bibliotheksspektren gemischt werden (mindestens 2, mindestens 10° voneinander entfernt).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="53"/>
        <source>Abundance pattern</source>
        <translation>Abundanzmuster</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="53"/>
        <source>Spatial structure of the abundance maps: smooth random fields, smooth polynomials, or patches.</source>
        <translation>Räumliche Struktur der Abundanzkarten: glatte Zufallsfelder, glatte Polynome oder Flächen.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="57"/>
        <source>Purity</source>
        <translation>Reinheit</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="57"/>
        <source>0 = highly mixed pixels, 1 = many nearly pure pixels.</source>
        <translation>0 = stark gemischte Pixel, 1 = viele nahezu reine Pixel.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="60"/>
        <source>Signal-to-noise ratio (dB)</source>
        <translation>Signal-Rausch-Verhältnis (dB)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="60"/>
        <source>Noise level; 0 = no noise.</source>
        <translation>Rauschpegel; 0 = kein Rauschen.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="71"/>
        <source>Random seed</source>
        <translation>Zufallsstartwert</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="71"/>
        <source>The same seed gives the same scene.</source>
        <translation>Derselbe Startwert ergibt dieselbe Szene.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="73"/>
        <source>Scene</source>
        <translation>Szene</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="73"/>
        <source>The synthetic hyperspectral raster (Float32, wavelengths in the metadata).</source>
        <translation>Das synthetische hyperspektrale Raster (Float32, Wellenlängen in den Metadaten).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="76"/>
        <source>True abundances</source>
        <translation>Wahre Abundanzen</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="76"/>
        <source>One band per endmember, named after it: the truth to score against.</source>
        <translation>Ein Band pro Endmember, nach ihm benannt: die Wahrheit, an der bewertet wird.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="80"/>
        <source>True endmembers</source>
        <translation>Wahre Endmember</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="80"/>
        <source>CSV of the mixed library spectra (wavelength_nm, one column per endmember).</source>
        <translation>CSV der gemischten Bibliotheksspektren (wavelength_nm, eine Spalte pro Endmember).</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="84"/>
        <source>Spectral library</source>
        <translation>Spektralbibliothek</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="84"/>
        <source>Library to draw the endmembers from (ENVI .sli/.hdr or CSV); empty: the bundled USGS library.</source>
        <translation>Bibliothek, aus der die Endmember gezogen werden (ENVI .sli/.hdr oder CSV); leer: die mitgelieferte USGS-Bibliothek.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="88"/>
        <source>Endmember names (comma-separated)</source>
        <translation>Endmember-Namen (kommagetrennt)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="95"/>
        <source>Synthesize test scene</source>
        <translation>Testszene synthetisieren</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="98"/>
        <source>hyperspectral,synthetic,simulation,test,truth,benchmark</source>
        <translation>hyperspektral,synthetisch,Simulation,Test,Wahrheit,Benchmark</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="39"/>
        <source>Generates a hyperspectral scene with known truth: endmembers drawn from a spectral library (the bundled USGS one by default), spatially structured abundance maps that sum to one, and white noise at a given SNR. Use it to try the algorithms and to score them with &apos;Evaluate unmixing result&apos;.</source>
        <translation>Erzeugt eine hyperspektrale Szene mit bekannter Wahrheit: Endmember aus einer Spektralbibliothek (standardmäßig der mitgelieferten USGS-Bibliothek), räumlich strukturierte Abundanzkarten mit Summe eins und weißes Rauschen mit gegebenem SNR. Damit lassen sich die Algorithmen ausprobieren und mit „Entmischungsergebnis bewerten“ bewerten.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="62"/>
        <source>Illumination variability</source>
        <translation>Beleuchtungsvariabilität</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="62"/>
        <source>Standard deviation of a smooth per-pixel brightness factor (shade, topography), e.g. 0.1; 0 = none.</source>
        <translation>Standardabweichung eines glatten Helligkeitsfaktors je Pixel (Schatten, Topographie), z. B. 0,1; 0 = keiner.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="66"/>
        <source>Within-material variability</source>
        <translation>Variabilität innerhalb der Materialien</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/synthesize.py" line="66"/>
        <source>Each pixel mixes its own smoothly perturbed copies of the spectra, as real materials vary; relative standard deviation per band, e.g. 0.05; 0 = none. The true endmembers are the unperturbed spectra.</source>
        <translation>Jedes Pixel mischt eigene, glatt gestörte Kopien der Spektren, wie reale Materialien variieren; relative Standardabweichung je Band, z. B. 0,05; 0 = keine. Die wahren Endmember sind die ungestörten Spektren.</translation>
    </message>
</context>
<context>
    <name>TrainAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/train.py" line="46"/>
        <source>Number of endmembers (0 = estimate)</source>
        <translation>Anzahl der Endmember (0 = schätzen)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="53"/>
        <source>Reference abundances (optional)</source>
        <translation>Referenzabundanzen (optional)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="74"/>
        <source>Model file</source>
        <translation>Modelldatei</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="87"/>
        <source>Train unmixing model</source>
        <translation>Entmischungsmodell trainieren</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="90"/>
        <source>hyperspectral,unmixing,training,model,diffusion,checkpoint</source>
        <translation>hyperspektral,Entmischung,Training,Modell,Diffusion,Checkpoint</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="107"/>
        <source>DiffUnmix models (*.pt)</source>
        <translation>DiffUnmix-Modelle (*.pt)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="39"/>
        <source>Fits the deep engine (HybridSTU and the abundance and endmember diffusion models) to a raster and saves it as a model file, to be applied to other rasters of the same sensor with &apos;Apply unmixing model&apos;. Semi-blind by default; supervised when reference abundances are given. Needs PyTorch; takes minutes on a CPU.</source>
        <translation>Passt die Deep-Learning-Engine (HybridSTU sowie die Diffusionsmodelle für Abundanzen und Endmember) an ein Raster an und speichert sie als Modelldatei, die mit „Entmischungsmodell anwenden“ auf andere Raster desselben Sensors angewendet werden kann. Standardmäßig halbblind; überwacht, wenn Referenzabundanzen angegeben sind. Benötigt PyTorch; dauert auf einem Prozessor einige Minuten.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="46"/>
        <source>How many materials the model separates. 0: estimated from the data (HySime), or the band count of the reference abundances when given.</source>
        <translation>Wie viele Materialien das Modell trennt. 0: aus den Daten geschätzt (HySime) oder die Bandanzahl der Referenzabundanzen, falls angegeben.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="53"/>
        <source>Optional raster of known abundances on the input&apos;s grid (one band per endmember): supervised training.</source>
        <translation>Optionales Raster bekannter Abundanzen im Raster der Eingabe (ein Band pro Endmember): überwachtes Training.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="74"/>
        <source>The fitted model (.pt): weights, endmembers, band count and wavelengths. Holds tensors and plain settings only.</source>
        <translation>Das angepasste Modell (.pt): Gewichte, Endmember, Bandanzahl und Wellenlängen. Enthält nur Tensoren und einfache Einstellungen.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="30"/>
        <source>All three networks, in order</source>
        <translation>Alle drei Netze, der Reihe nach</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="30"/>
        <source>HybridSTU only</source>
        <translation>Nur HybridSTU</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="30"/>
        <source>Abundance diffusion only (needs a model to resume)</source>
        <translation>Nur Anteils-Diffusion (braucht ein Modell zum Fortsetzen)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="30"/>
        <source>Endmember diffusion only (needs a model to resume)</source>
        <translation>Nur Endmember-Diffusion (braucht ein Modell zum Fortsetzen)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="60"/>
        <source>Networks to fit</source>
        <translation>Anzupassende Netze</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="60"/>
        <source>All three (default), or one: fit the engine stage by stage, e.g. HybridSTU first, then the abundance diffusion with the first model as the model to resume.</source>
        <translation>Alle drei (Standard) oder eines: die Engine Stufe für Stufe anpassen, z. B. zuerst HybridSTU, dann die Anteils-Diffusion mit dem ersten Modell als fortzusetzendem Modell.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="67"/>
        <source>Model to resume (optional)</source>
        <translation>Fortzusetzendes Modell (optional)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/train.py" line="67"/>
        <source>A model file (.pt) to go on from (same bands): its endmembers and fitted networks are kept, the chosen networks are fitted (further) on this raster.</source>
        <translation>Eine Modelldatei (.pt), von der aus weitergearbeitet wird (gleiche Bänder): ihre Endmember und angepassten Netze bleiben erhalten, die gewählten Netze werden auf diesem Raster (weiter) angepasst.</translation>
    </message>
</context>
<context>
    <name>UnmixAlgorithm</name>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="56"/>
        <source>Full engine (HybridSTU + diffusion)</source>
        <translation>Vollständige Engine (HybridSTU + Diffusion)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="56"/>
        <source>VCA + FCLS (classical)</source>
        <translation>VCA + FCLS (klassisch)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="66"/>
        <source>Number of endmembers (0 = estimate)</source>
        <translation>Anzahl der Endmember (0 = schätzen)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="73"/>
        <source>Method</source>
        <translation>Methode</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="96"/>
        <source>Unmix hyperspectral raster</source>
        <translation>Hyperspektrales Raster entmischen</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="99"/>
        <source>hyperspectral,unmixing,endmember,abundance,vca,fcls,diffusion,spectral</source>
        <translation>hyperspektral,Entmischung,Endmember,Abundanz,VCA,FCLS,Diffusion,spektral</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="61"/>
        <source>Estimates the endmember spectra (pure materials) of a hyperspectral raster and one abundance map per endmember: the fraction of each material in each pixel, non-negative and summing to one.</source>
        <translation>Schätzt die Endmember-Spektren (reine Materialien) eines hyperspektralen Rasters und eine Abundanzkarte pro Endmember: den Anteil jedes Materials in jedem Pixel, nichtnegativ und mit Summe eins.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="66"/>
        <source>How many materials to extract. 0 estimates the number from the data (HySime). Must be smaller than the number of bands. Ignored with a saved model.</source>
        <translation>Wie viele Materialien extrahiert werden. 0 schätzt die Anzahl aus den Daten (HySime). Muss kleiner als die Anzahl der Bänder sein. Wird mit einem gespeicherten Modell ignoriert.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="73"/>
        <source>Full engine: a spectral-spatial CNN (HybridSTU) fitted to the scene, its abundances refined by a diffusion model (DDIM) and the spectra by a second one; needs PyTorch, takes minutes on a CPU. VCA + FCLS: vertex component analysis then fully constrained least squares; takes seconds and needs no PyTorch.</source>
        <translation>Vollständige Engine: ein spektral-räumliches CNN (HybridSTU), an die Szene angepasst, dessen Abundanzen ein Diffusionsmodell (DDIM) verfeinert und die Spektren ein zweites; benötigt PyTorch, dauert auf einem Prozessor Minuten. VCA + FCLS: Vertex Component Analysis, dann vollständig beschränkte kleinste Quadrate; dauert Sekunden und benötigt kein PyTorch.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="82"/>
        <source>A model file (.pt) written by &apos;Train unmixing model&apos;: applied instead of fitting the engine to this raster (same sensor and bands). Uses the full engine and the model&apos;s endmembers; Method and Number of endmembers are then ignored.</source>
        <translation>Eine Modelldatei (.pt), geschrieben von „Entmischungsmodell trainieren“: wird angewendet, statt die Engine an dieses Raster anzupassen (gleicher Sensor, gleiche Bänder). Verwendet die vollständige Engine und die Endmember des Modells; Methode und Anzahl der Endmember werden dann ignoriert.</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="30"/>
        <source>(needs PyTorch, not installed)</source>
        <translation>(benötigt PyTorch, nicht installiert)</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="82"/>
        <source>Saved model</source>
        <translation>Gespeichertes Modell</translation>
    </message>
    <message>
        <location filename="../plugin/algorithms/unmix.py" line="155"/>
        <source>The raster has no band wavelengths, so the bundled USGS library cannot name its endmembers: they are numbered EM1, EM2, …</source>
        <translation>Das Raster hat keine Bandwellenlängen, daher kann die mitgelieferte USGS-Bibliothek seine Endmember nicht benennen: sie werden EM1, EM2, … nummeriert.</translation>
    </message>
</context>
</TS>
